"""The README/REPORT blocks are what `make report-ppo` writes from the committed results, and the
headline carries the caveats (seed count, evaluation noise)."""

from pathlib import Path

from paperlab.ppo.report import BLOCKS, headline
from paperlab.shared.report import has_block, replace_block

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"


def test_committed_blocks_are_up_to_date():
    texts = {p: p.read_text() for p in (ROOT / "README.md", ROOT / "REPORT.md")}
    for name, fn in BLOCKS.items():
        content = fn(RESULTS)
        holders = [p for p, t in texts.items() if has_block(t, name)]
        assert holders, name
        for p in holders:
            assert replace_block(texts[p], name, content) == texts[p], f"{p.name}: block {name} is stale"


def test_headline_states_the_seed_count_and_the_evaluation_spread():
    line = headline(RESULTS)
    assert "5/5 seeds" in line and "one seed each" in line and "±" in line
    assert "std1" not in line  # the failed std-1 Ant run stays out of the headline
