"""The run contract on a tiny flow-matching run: run_dir only, refused overwrites, exact resume, one-line
errors for foreign/missing/corrupt models, NaN, publish and the report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from paperlab.shared.checkpoint import LAST, load_checkpoint
from paperlab.toys import diffusion, flow_matching, publish, report

ROOT = Path(__file__).resolve().parents[3]
TINY = [
    "flow_matching.hidden=16",
    "flow_matching.layers=1",
    "flow_matching.train_steps=40",
    "flow_matching.sample_steps=4",
    "flow_matching.n_samples=100",
    "checkpoint_every=20",
]


def _exit(capsys, main, args) -> tuple[int, str]:
    with pytest.raises(SystemExit) as e:
        main(args)
    err = capsys.readouterr().err.strip().splitlines()
    return e.value.code, err[-1] if err else ""


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    run = tmp_path_factory.mktemp("fm") / "run"
    m = flow_matching.main([*TINY, f"run_dir={run}"])
    return run, m


def test_a_run_writes_only_into_its_run_dir(finished, tmp_path, monkeypatch):
    run, m = finished
    names = {p.name for p in run.iterdir()}
    assert {"config.yaml", "metrics.jsonl", "model.pt", "eval.json", "summary.json", "checkpoints"} <= names
    assert {"samples.png", "snapshots.png", "sampling.gif"} <= names
    summary = json.loads((run / "summary.json").read_text())
    assert summary["steps"] == 40 and summary["finished"] and summary["seed"] == 0 and summary["device"] == "cpu"
    assert {"wall_time_s", "cpu_time_s"} <= set(summary)
    assert load_checkpoint(run / LAST)["step"] == 40
    # the default run_dir is under runs/, relative to where the command runs; nothing else is written
    monkeypatch.chdir(tmp_path)
    flow_matching.main([*TINY, "flow_matching.train_steps=2", "checkpoint_every=0", "seed=3"])
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.iterdir()) == ["runs"]
    assert (tmp_path / "runs/toys/flow_matching/seed3/eval.json").is_file()


def test_fresh_run_over_a_run_is_refused(finished, capsys):
    run, _ = finished
    before = (run / "metrics.jsonl").read_text()
    code, line = _exit(capsys, flow_matching.main, [*TINY, f"run_dir={run}"])
    assert code == 2 and "already holds a run" in line and "--resume" in line
    assert (run / "metrics.jsonl").read_text() == before  # nothing deleted


def test_fresh_run_over_a_finished_run_without_checkpoint_is_refused(finished, tmp_path, capsys):
    run, _ = finished
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "eval.json").write_text((run / "eval.json").read_text())
    code, line = _exit(capsys, flow_matching.main, [*TINY, f"run_dir={tmp_path / 'old'}"])
    assert code == 2 and "already holds a trained model" in line


def test_resume_continues_exactly(finished, tmp_path, monkeypatch):
    """Stopped after the first chunk (as Ctrl-C would), then resumed with --resume before an override."""
    import paperlab.shared.cli as cli

    run, m_full = finished
    checks = []

    class StopAfterFirstChunk(cli.StopSignal):
        @property
        def requested(self):
            checks.append(1)
            return len(checks) > 1

        @requested.setter
        def requested(self, value):
            pass

    monkeypatch.setattr(cli, "StopSignal", StopAfterFirstChunk)
    part = tmp_path / "part"
    assert flow_matching.main([*TINY, f"run_dir={part}"]) is None  # stopped: no model, no evaluation
    assert load_checkpoint(part / LAST)["step"] == 20 and not (part / "model.pt").exists()
    assert not json.loads((part / "summary.json").read_text())["finished"]
    monkeypatch.undo()
    m = flow_matching.main(["--resume", *TINY, f"run_dir={part}"])
    a = load_checkpoint(run / "model.pt")["params"]
    b = load_checkpoint(part / "model.pt")["params"]
    for x, y in zip(_leaves(a), _leaves(b)):
        np.testing.assert_array_equal(x, y)
    rows = lambda p: [(r["step"], r["loss"]) for r in map(json.loads, (p / "metrics.jsonl").read_text().splitlines())]
    assert rows(part) == rows(run)
    assert m["energy_distance"] == m_full["energy_distance"]


def _leaves(tree):
    import jax

    return jax.tree_util.tree_leaves(tree)


def test_resume_with_a_changed_model_is_refused(finished, capsys):
    run, _ = finished
    code, line = _exit(capsys, flow_matching.main, [*TINY, "flow_matching.hidden=8", f"run_dir={run}", "--resume"])
    assert code == 2 and "flow_matching.hidden" in line


def test_eval_only_refuses_another_tasks_model(finished, capsys):
    run, _ = finished
    code, line = _exit(capsys, diffusion.main, ["eval_only=true", f"run_dir={run}"])
    assert code == 2 and "holds a flow_matching model, not a diffusion one" in line


def test_eval_only_without_a_model_is_one_line(tmp_path, capsys):
    code, line = _exit(capsys, diffusion.main, ["eval_only=true", f"run_dir={tmp_path}"])
    assert code == 2 and line.startswith("error: no trained diffusion model at")


def test_eval_only_of_a_corrupt_or_foreign_file_is_one_line(tmp_path, capsys):
    (tmp_path / "model.pt").write_bytes(b"not a checkpoint")
    code, line = _exit(capsys, flow_matching.main, ["eval_only=true", f"run_dir={tmp_path}"])
    assert code == 2 and "not a readable checkpoint" in line
    from paperlab.shared.checkpoint import atomic_save

    atomic_save({"config": {}, "model": {}}, tmp_path / "model.pt")  # e.g. another project's checkpoint
    code, line = _exit(capsys, flow_matching.main, ["eval_only=true", f"run_dir={tmp_path}"])
    assert code == 2 and "not a toys model" in line


def test_eval_only_reevaluates_the_saved_model(finished):
    run, m = finished
    again = flow_matching.main(["eval_only=true", f"run_dir={run}"])  # the saved config, not the defaults
    assert again["energy_distance"] == pytest.approx(m["energy_distance"])
    assert again["n_params"] == m["n_params"]


@pytest.mark.parametrize(
    "args, code, text",
    [
        (["flow_matching.train_steps=0"], 2, "train_steps must be >= 1"),
        (["flow_matching.nope=1"], 2, "unknown config key"),
        (["--config", "configs/toys/diffusion.yaml"], 2, "preset for task 'diffusion'"),
        (["flow_matching.lr=1e30", "flow_matching.train_steps=20"], 1, "non-finite loss="),
    ],
)
def test_bad_input_and_nan_are_one_line(args, code, text, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    got, line = _exit(capsys, flow_matching.main, [*TINY, *args, f"run_dir={tmp_path / 'r'}"])
    assert got == code and text in line, line
    assert line.startswith("error: ")


def test_publish_copies_a_finished_run_and_the_report_reads_it(finished, tmp_path, capsys):
    run, m = finished
    results = tmp_path / "results"
    (results / "flow_matching").mkdir(parents=True)
    (results / "flow_matching" / "metrics.json").write_text("{}")  # the old layout: replaced
    code, line = _exit(capsys, publish.main, [str(run), "--task", "diffusion", "--results", str(results)])
    assert code == 2 and "is a flow_matching run, not diffusion" in line
    publish.main([str(run), "--task", "flow_matching", "--results", str(results)])
    names = sorted(p.name for p in (results / "flow_matching").iterdir())
    assert "metrics.json" not in names and {"eval.json", "summary.json", "config.yaml", "sampling.gif"} <= set(names)
    publish.main(
        [str(run), "--task", "flow_matching", "--results", str(results), "--name", "flow_matching_x", "--no-gif"]
    )
    assert not list((results / "flow_matching_x").glob("*.gif")) and (results / "flow_matching_x/samples.png").is_file()
    assert "flow_matching_x" in report.blocks(results)["overview"]  # a second run of the task is reported beside it
    loaded = report._load(results, "flow_matching")
    assert loaded["energy_distance"] == m["energy_distance"]
    assert loaded["train_cpu_seconds"] == json.loads((run / "summary.json").read_text())["cpu_time_s"]
    table = report.blocks(results)["generative"]
    assert f"{m['mmd_rbf'] / m['mmd_rbf_real_vs_real']:.1f}×" in table


def test_committed_readme_blocks_are_generated_from_results():
    """The README tables are exactly what `make toys-report` makes from results/ (run it after publishing)."""
    from paperlab.shared.report import replace_block

    readme = (ROOT / "projects/toys/README.md").read_text()
    regenerated = readme
    for name, content in report.blocks(ROOT / "projects/toys/results").items():
        regenerated = replace_block(regenerated, name, content)
    assert regenerated == readme, "README blocks are stale: run make toys-report"
