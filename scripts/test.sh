#!/usr/bin/env bash
# Set up, then lint (ruff, configured in pyproject.toml) and the whole test suite, one pytest-xdist
# worker per core (CI has 2: serially the suite takes over its 10-minute budget there).
source "$(dirname "$0")/env.sh"
.venv/bin/ruff check .
exec .venv/bin/python -m pytest -n auto tests "$@"
