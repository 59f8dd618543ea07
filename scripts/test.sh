#!/usr/bin/env bash
# Installs what is needed, then runs the whole test suite: ruff, mypy, pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh tests
echo "==> ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "==> mypy"
.venv/bin/mypy edge_agent central fsv_contract fsv_common testbed bench
echo "==> pytest"
exec .venv/bin/pytest "$@"
