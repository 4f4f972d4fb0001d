#!/usr/bin/env bash
# The GPU rows of BENCHMARKS.md in one call of a lent GPU machine, which has jax but neither the data
# nor gensim, and reaches no network. Two steps:
#
#   bash benchmarks/device.sh prepare   # here: enwiki-00, WS-353, RW and gensim's wheels into .device/
#   bash benchmarks/device.sh           # there, from the repository root, with .device carried along
#
# There it installs the carried wheels where gensim is missing, runs the tests of the training step on
# the accelerator, then benchmarks/throughput.py at d = 300: negative sampling on the whole enwiki-00
# shard and the ACE generators on its first 1M tokens, each at several step sizes (a GPU needs large
# steps to be busy), gensim on the machine's cores beside them; last, step time at 10k and 1M rows
# (benchmarks/vocab_scaling.py, its Zipf corpora made there). Every stage has its own time limit, so
# one that hangs cannot take the others' time; together at most 600 s, which leaves a session's 15
# device minutes room for the machine's start. Logs, tables and JSON go to $OUT (else runs/device).
# QUICK=1: tiny settings, to check the script itself on any machine in about a minute and a half.
set -uo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}

if [[ "${1:-}" == prepare ]]; then
  set -e
  data=${ACE_JAX_DATA_DIR:-../shared/data}
  mkdir -p .device/data/corpus/enwiki .device/data/wordsim/faruqui .device/whl
  cp "$data/corpus/enwiki/enwiki-00.xz" .device/data/corpus/enwiki/
  cp "$data/wordsim/faruqui/EN-WS-353-ALL.txt" "$data/wordsim/faruqui/EN-RW-STANFORD.txt" .device/data/wordsim/faruqui/
  # The machine's Python is 3.12 (the device tool's notes); gensim needs smart_open, which needs wrapt.
  "$python" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d .device/whl gensim==4.4.0 smart_open==9.0.2 wrapt==2.5.2
  du -sh .device
  exit 0
fi

out=${OUT:-runs/device}
mkdir -p "$out"
export ACE_JAX_DATA_DIR=$PWD/.device/data PYTHONUNBUFFERED=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
if ! "$python" -c "import gensim" 2>/dev/null; then
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site \
    .device/whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site:$PYTHONPATH
fi
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm --format=csv 2>/dev/null | tee "$out/gpu.txt"
"$python" -c "import jax, gensim; print('jax', jax.__version__, jax.devices(), 'gensim', gensim.__version__)" \
  | tee -a "$out/gpu.txt" || exit 1

if [[ "${QUICK:-0}" == 1 ]]; then
  tests=(tests/test_losses.py) ns=(--max-tokens 200000 --chunk 512,2048 --repeats 2 --window-steps 20)
  ace=(--max-tokens 100000 --chunk 512 --repeats 1 --window-steps 5)
  vocab=(--vocab-sizes 1000,100000 --tokens 200000 --chunk 2048 --steps 5 --repeats 2) limits=(120 300 300 300)
else
  tests=(tests/test_word.py tests/test_game.py tests/test_sparse_optim.py tests/test_reinforce.py)
  ns=(--max-tokens 0 --chunk 512,8192,65536 --repeats 3 --window-steps 300)
  ace=(--max-tokens 1000000 --chunk 512,8192 --repeats 3 --window-steps 100)
  vocab=(--vocab-sizes 10000,1000000 --chunk 8192 --steps 20 --repeats 5) limits=(90 240 120 150)
fi

status=0
stage() {  # name, time limit in seconds, command...: the command's output to $out/name.log and here
  local name=$1 limit=$2
  shift 2
  echo "== $name (at most ${limit} s): $*"
  timeout "$limit" "$@" > "$out/$name.log" 2>&1
  local rc=$?
  tail -n 25 "$out/$name.log"
  echo "== $name: exit $rc"
  [[ $rc == 0 ]] || status=1
}
# Tests compile many small programs: 4 processes where pytest-xdist is there, sharing the GPU's memory.
# Their float32 tolerances are for float32 products, not TF32's, which a GPU may use by default; the
# benchmarks run at the default precision, and their ρ shows what that costs.
parallel=()
"$python" -c "import xdist" 2>/dev/null && parallel=(-n 4)
stage tests "${limits[0]}" env XLA_PYTHON_CLIENT_PREALLOCATE=false JAX_DEFAULT_MATMUL_PRECISION=highest \
  "$python" -m pytest -q -x -p no:cacheprovider "${parallel[@]}" "${tests[@]}"
# lr 0.05 (gensim's alpha too): large steps keep their ρ there (README, "Large steps"), not at 0.025.
stage ns-300 "${limits[1]}" "$python" benchmarks/throughput.py --dims 300 --samplers ns,ns-shared-step --row-clip 50 \
  --lr 0.05 "${ns[@]}" --json "$out/ns-300.json"
stage ace-300 "${limits[2]}" "$python" benchmarks/throughput.py --dims 300 --samplers ace,ace-pool,ace-kbgan \
  "${ace[@]}" --json "$out/ace-300.json"
# Issue 3's vocabulary target (1M rows within 1.25x the step time of 10k) where rows come from HBM.
stage vocab-300 "${limits[3]}" "$python" benchmarks/vocab_scaling.py --samplers ns,ns-shared-step --dim 300 \
  --chunks "" --gensim-words 0 --workdir /tmp/vocab_scaling "${vocab[@]}"
exit $status
