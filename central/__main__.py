"""Run the central server CLI with ``python -m central``."""

from central.cli import main

raise SystemExit(main())
