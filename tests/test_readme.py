"""The README's Python examples run as written."""

import math
import os
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_block(heading: str) -> str:
    text = README.read_text(encoding="utf-8")
    section = text[text.index(heading):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_s2net_three_question_example():
    namespace = {}
    exec(compile(python_block("### S2Net: the three-question example"), "README.md", "exec"), namespace)
    near, far = (float(x) for x in namespace["sims"](namespace["state"].params))
    assert near > 0.9 and far < -0.5, (near, far)  # sim(q1, q2) > sim(q1, q3) by a clear margin


def test_word_embedding_example():
    if not os.environ.get("ACE_JAX_DATA_DIR"):
        pytest.skip("ACE_JAX_DATA_DIR is not set (the example reads enwiki-00)")
    namespace = {}
    exec(compile(python_block("## Python"), "README.md", "exec"), namespace)
    state, metrics = namespace["state"], namespace["metrics"]
    assert int(state.step) == 100 and float(state.pairs) > 0
    assert all(math.isfinite(float(v)) for v in metrics.values()), metrics


def test_adding_a_family_shows_the_tested_toy():
    """README's "Adding a family" is the family tests/test_game.py trains with every sampler, verbatim."""
    block = python_block("### Adding a family").strip()
    assert block in (Path(__file__).with_name("test_game.py")).read_text(encoding="utf-8")
    assert 25 <= len(block.splitlines()) <= 35
