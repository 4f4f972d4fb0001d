# Sourced by the entry scripts: makes .venv (once) with ace_jax and its test tools installed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
if [ ! -x .venv/bin/python ] || [ ! -x .venv/bin/ruff ] || ! .venv/bin/python -c "import ace_jax, gensim, pytest, xdist" 2>/dev/null; then
  python3 -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
  .venv/bin/python -m pip install --quiet -e ".[test]"
fi
# Datasets: $ACE_JAX_DATA_DIR if set, else the shared/data folder beside the checkout when there is one.
if [ -z "${ACE_JAX_DATA_DIR:-}" ] && [ -d ../shared/data ]; then
  export ACE_JAX_DATA_DIR="$(cd ../shared/data && pwd)"
fi
