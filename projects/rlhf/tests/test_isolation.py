"""The gold scorer is hidden: no training module imports it, directly or through another module."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "src" / "paperlab" / "rlhf"
TRAINING = ("sft", "reward", "ppo", "baselines", "hh", "bench", "pipeline")  # fits weights, or runs what does
GOLD = "paperlab.rlhf.gold"


def _package_imports(module: str) -> set[str]:
    """paperlab.rlhf modules imported anywhere in ``module``'s file (top level or inside functions)."""
    tree = ast.parse((PKG / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("paperlab.rlhf"):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names if (PKG / f"{a.name}.py").is_file()}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("paperlab.rlhf")}
    return {m for m in found if (PKG / f"{m.rsplit('.', 1)[-1]}.py").is_file()}


def _closure(module: str) -> set[str]:
    seen, todo = set(), [f"paperlab.rlhf.{module}"]
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        todo += list(_package_imports(m.rsplit(".", 1)[-1]))
    return seen


@pytest.mark.parametrize("module", TRAINING)
def test_training_code_never_imports_the_gold_scorer(module):
    assert (PKG / f"{module}.py").is_file()
    assert GOLD not in _closure(module), f"paperlab.rlhf.{module} reaches the gold scorer"


def test_the_static_check_sees_a_real_import():
    assert GOLD in _closure("preferences") and GOLD in _closure("evaluate")


def test_training_modules_run_with_the_gold_scorer_blocked():
    """Import every training module (and call into the heavy libraries they use) with gold and VADER blocked."""
    code = (
        "import sys\n"
        f"sys.modules['{GOLD}'] = None\n"  # any import of it now raises ImportError
        "sys.modules['vaderSentiment'] = None\n"
        f"for m in {TRAINING!r}:\n"
        "    __import__('paperlab.rlhf.' + m)\n"
        "import paperlab.rlhf.reward as r, paperlab.rlhf.baselines as b\n"
        "import trl, transformers\n"
        "try:\n"
        "    import paperlab.rlhf.preferences\n"
        "except ImportError:\n"
        "    print('blocked')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("blocked")  # the block really bites where gold is used
