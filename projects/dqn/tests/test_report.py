"""The README tables are computed from the committed run files, not typed: check the arithmetic."""

from __future__ import annotations

import json

import pytest

from paperlab.dqn.report import _episode_curve, bench_table, cartpole_table, headline, main


def _fake_run(folder, name, solved_step, eval_mean, final_ret, time_s=10.0):
    run = folder / name
    run.mkdir(parents=True)
    summary = {
        "steps": solved_step or 1000,
        "solved": solved_step and {"step": solved_step, "time": time_s},
        "eval": {"return_mean": eval_mean},
        "final_return_mean": final_ret,
    }
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


def test_a_run_stopped_before_its_end_is_left_out(tmp_path):
    cp = tmp_path / "cartpole"
    _fake_run(cp, "dqn-seed1", 10_000, 500.0, 100.0)
    stopped = _fake_run(cp, "dqn-seed2", None, 0.0, 0.0)
    (stopped / "summary.json").write_text(json.dumps({"steps": 500, "finished": False}))
    assert "| DQN | 1/1 |" in cartpole_table(cp)


def test_bench_line_shows_the_machine_load_when_the_file_has_it(tmp_path):
    bench = {
        "env_id": "MinAtar/Breakout-v0",
        "agent": "dqn",
        "batch_size": 32,
        "buffer_size": 100000,
        "optimizer": "rmsprop",
        "compile_optimizer": True,
        "torch": "2.x",
        "torch_threads": 1,
        "fps_median": 300.0,
        "fps_min": 290.0,
        "fps_max": 310.0,
    }
    (tmp_path / "old.json").write_text(json.dumps(bench))
    assert "load" not in bench_table(tmp_path / "old.json")  # files from before the load was recorded
    bench.update(load_before=[0.12, 0.3, 0.2], load_after=[1.04, 0.5, 0.3], cpu_model="Test CPU", cpu_count=2)
    (tmp_path / "new.json").write_text(json.dumps(bench))
    line = bench_table(tmp_path / "new.json").splitlines()[0]
    assert "**300 frames/s**" in line and "Test CPU, 2 cores, load average (1 min) 0.1 before and 1.0 after" in line


def test_a_readme_without_a_block_marker_is_an_error_and_nothing_is_written(tmp_path, capsys):
    cp = tmp_path / "results" / "cartpole"
    _fake_run(cp, "dqn-seed1", 10_000, 500.0, 100.0)
    (cp / "dqn-seed1" / "metrics.jsonl").write_text('{"step": 2000, "eval_return_mean": 480.0}\n')
    readme = tmp_path / "README.md"
    readme.write_text("# no markers here\n")
    with pytest.raises(SystemExit) as exit_:
        main(["--results", str(tmp_path / "results"), "--readme", str(readme)])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"error: report blocks with no markers in {readme}: cartpole"
    ]
    assert readme.read_text() == "# no markers here\n"
    readme.write_text("a\n<!-- report:cartpole -->\nold\n<!-- /report:cartpole -->\nb\n")
    main(["--results", str(tmp_path / "results"), "--readme", str(readme)])
    assert "old" not in readme.read_text() and "| DQN | 1/1 | 10000" in readme.read_text()


def test_batched_table_means_over_seeds_leaves_out_unfinished_seeds_and_counts_wins(tmp_path):
    from paperlab.dqn.report import batched_table

    game = tmp_path / "batched" / "Breakout"
    for agent, rets in (("dqn", [2.0, 4.0, 9.0]), ("mdqn", [5.0, 7.0])):
        for k, ret in enumerate(rets, start=1):
            run = game / agent / f"seed{k}"
            run.mkdir(parents=True)
            summary = {
                "steps": 20_000,
                "num_seeds": 5,
                "finished": not (agent == "dqn" and k == 3),
                "final_return_mean": ret,
                "eval": {"return_mean": 2 * ret, "episodes": 10},
                "fps_all_agents": 500.0,
            }
            (run / "summary.json").write_text(json.dumps(summary))
            (run / "config.yaml").write_text("agent: x\nlearning_starts: 5000\n")
            (run / "episodes.csv").write_text(f"step,return,length\n100,{k},100\n5000,1,100\n6000,9,100\n")
    row = batched_table(tmp_path / "batched").splitlines()[2]
    # DQN: seeds 1-2 only (seed 3 unfinished): mean 3.0, std 1.0; M-DQN: 6.0 ± 1.0; evals doubled
    assert row.startswith("| Breakout | 20k | 3.0 ± 1.0 (2 seeds) | 6.0 ± 1.0 (2 seeds) | 6.0 ± 2.0 (2 seeds)")
    # random policy: episodes ending by step 5000 (learning_starts) of the 4 finished runs: (1+1+2+1+1+1+2+1)/8
    assert "| 1.25 | 500 / 500 | ~10 |" in row
    # the headline gives each game's seed means (finished seeds only) beside the random level
    assert "training return DQN/M-DQN (seed mean) vs random policy: Breakout 3.00/6.00 vs 1.25" in headline(tmp_path)
    # 20k of 1M frames; 5 seeds x 1M frames at 500 agent-frames/s = 10,000 s = 2.8 h per process
    assert "2.0% of the 1M-frames-per-seed target" in batched_table(tmp_path / "batched")
    assert "1M frames per seed would take 2.8 h per process" in batched_table(tmp_path / "batched")
