#!/usr/bin/env bash
# The main job: set up, then the quick word-similarity reproduction (table on stdout, figure in runs/quick/).
source "$(dirname "$0")/env.sh"
exec .venv/bin/python experiments/word_similarity.py --quick "$@"
