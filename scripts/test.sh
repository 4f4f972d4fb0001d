#!/usr/bin/env bash
# Set up, then lint (ruff, configured in pyproject.toml) and the whole test suite.
source "$(dirname "$0")/env.sh"
.venv/bin/ruff check .
exec .venv/bin/python -m pytest tests "$@"
