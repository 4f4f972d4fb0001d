#!/usr/bin/env bash
# The main job: set up, then negative sampling (the library's default form) and ACE (pool generator) against gensim on
# the whole enwiki-00 shard, one seed (table and hardness on stdout, figure in runs/quick/), then the generator's
# negatives for a few words beside the discriminator's choices.
source "$(dirname "$0")/env.sh"
.venv/bin/python experiments/word_similarity.py --quick "$@"
echo
echo "The generator's negatives for a few words (ace-jax negatives runs/word_similarity-quick/ace-pool-seed0 ...):"
exec .venv/bin/ace-jax negatives runs/word_similarity-quick/ace-pool-seed0 king france music war computer --top 8
