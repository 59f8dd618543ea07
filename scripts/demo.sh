#!/usr/bin/env bash
# Installs what is needed, then runs the whole system on this machine: sample RTSP cameras,
# the MQTT broker, the central server and an edge agent. Prints the URL to open.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh runtime
exec .venv/bin/python -m testbed.demo "$@"
