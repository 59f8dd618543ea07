#!/usr/bin/env bash
# Installs what is needed, then runs the whole test suite: ruff, mypy, pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
workers="${FSV_TEST_WORKERS:-3}"
if ! [[ "$workers" =~ ^[1-9][0-9]*$ ]]; then
    echo "FSV_TEST_WORKERS must be a whole number of test processes (1 or more), not '$workers'" >&2
    exit 2
fi
bash scripts/install.sh tests
echo "==> ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "==> mypy"
.venv/bin/mypy edge_agent central fsv_contract fsv_common testbed bench
echo "==> pytest"
if [ "$#" -eq 0 ] && [ "$workers" -gt 1 ]; then
    # The whole suite in $FSV_TEST_WORKERS processes (3 unless set; 1 runs it in one), one
    # test module each at a time: most of its time is spent waiting on real processes, video
    # and browsers, not on the CPU.
    .venv/bin/pytest --instafail -n "$workers" --dist loadfile
else
    .venv/bin/pytest --instafail "$@"
fi
if [ "$#" -eq 0 ]; then
    # The attacked system once more with central on PostgreSQL: what SQLite accepts and
    # PostgreSQL refuses (text holding NUL, strict types) must still be a 4xx, never a 500.
    echo "==> pytest: the security probes with central on PostgreSQL"
    FSV_TEST_DATABASE=postgres .venv/bin/pytest --instafail tests/security
fi
