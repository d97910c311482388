"""The README tables are computed from the committed run files, not typed: check the arithmetic."""

from __future__ import annotations

import json

import pytest

from paperlab.dqn.report import _episode_curve, cartpole_table, headline, replace_block


def _fake_run(folder, name, solved_step, eval_mean, final_ret, time_s=10.0):
    run = folder / name
    run.mkdir(parents=True)
    summary = {"steps": solved_step or 1000, "solved": solved_step and {"step": solved_step, "time": time_s},
               "eval": {"return_mean": eval_mean}, "final_return_mean": final_ret}
    (run / "summary.json").write_text(json.dumps(summary))
    return run


def test_cartpole_table_medians_ranges_and_unsolved_seeds(tmp_path):
    cp = tmp_path / "cartpole"
    _fake_run(cp, "dqn-seed1", 10_000, 500.0, 100.0, 5.0)
    _fake_run(cp, "dqn-seed2", 30_000, 490.0, 200.0, 9.0)
    _fake_run(cp, "dqn-seed3", 20_000, 480.0, 300.0, 7.0)
    _fake_run(cp, "mdqn-seed1", None, 120.0, 50.0)
    table = cartpole_table(cp)
    dqn = next(line for line in table.splitlines() if line.startswith("| DQN"))
    assert "| 3/3 | 20000 [10000, 30000] | 7 [5, 9] | 490.0 ± 8.2 (480.0) | 200 [100, 300] |" in dqn
    mdqn = next(line for line in table.splitlines() if line.startswith("| M-DQN"))
    assert "0/1 | not reached" in mdqn
    assert "DQN 3/3 seeds, median 20k steps" in headline(tmp_path)


def test_episode_curve_is_the_trailing_mean_of_finished_episodes(tmp_path):
    (tmp_path / "episodes.csv").write_text("step,return,length\n10,1,10\n20,3,10\n30,5,10\n")
    curve = _episode_curve(tmp_path, [5, 10, 25, 30], window=2)
    assert curve[0] != curve[0]  # nan: no episode finished yet
    assert list(curve[1:]) == [1.0, 2.0, 4.0]


def test_replace_block_only_touches_the_marked_block():
    text = "a\n<!-- report:x -->\nold\n<!-- /report:x -->\nb\n"
    assert replace_block(text, "x", "new") == "a\n<!-- report:x -->\nnew\n<!-- /report:x -->\nb\n"
    with pytest.raises(ValueError, match="report:y"):
        replace_block(text, "y", "new")
