#!/usr/bin/env bash
# Set up, then the whole test suite.
source "$(dirname "$0")/env.sh"
exec .venv/bin/python -m pytest tests "$@"
