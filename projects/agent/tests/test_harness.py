"""The evaluation harness: detects success, failure, a bad tool call and a recovered failure; resumes."""

import json
from pathlib import Path

import pytest

from paperlab.agent import evaluate
from paperlab.agent.config import Config
from paperlab.agent.tasks import TASKS
from paperlab.shared.config import ConfigError, load_config

PRESET = str(Path(__file__).resolve().parents[3] / "configs" / "agent" / "scripted.yaml")
SUBSET = "tasks=[cagr_ceo,revenue_growth,stdev_python,tram_loop]"


def _rows(run_dir):
    rows = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    for r in rows:  # timings differ between runs
        for a in r["per_attempt"]:
            a.pop("wall_s")
    return {(r["task"], r["condition"]): r for r in rows}


def test_every_task_checker_accepts_its_reference_and_rejects_nonsense():
    for t in TASKS:
        assert t.check(None) == (False, "no final answer")
        assert not t.check("I do not know.")[0], t.id
    assert TASKS[0].check("CAGR 15.58%; in 2025: a factory in Porto and the Atlas-3 robot")[0]


def test_harness_detects_each_outcome(tmp_path):
    run = tmp_path / "run"
    evaluate.main(["--config", PRESET, f"run_dir={run}", SUBSET])
    rows = _rows(run)
    # success after a bad tool call (invalid JSON), in both conditions
    assert (
        rows["stdev_python", "no_reflection"]["success"] and rows["stdev_python", "no_reflection"]["tool_errors"] == 1
    )
    # failure detected in both conditions
    assert not rows["revenue_growth", "reflection"]["success"] and rows["revenue_growth", "reflection"]["attempts"] == 2
    # a failure that reflection recovers, and only reflection
    for task in ("cagr_ceo", "tram_loop"):
        assert not rows[task, "no_reflection"]["success"]
        r = rows[task, "reflection"]
        assert r["success"] and not r["success_first"] and r["per_attempt"][1]["recalled"] >= 1
    assert rows["tram_loop", "no_reflection"]["stop_reasons"] == ["repeated_action", "repeated_action"]
    ev = json.loads((run / "eval.json").read_text())["conditions"]
    assert ev["reflection"]["success_rate"] == 0.75 and ev["no_reflection"]["success_rate"] == 0.25
    assert json.loads((run / "summary.json").read_text())["finished"] is True
    md = (run / "traces" / "cagr_ceo-reflection-a2.md").read_text()
    assert "Recalled from memory" in md and "2019 close as the start" in md and "**Checker:** success" in md


def test_resume_continues_at_the_first_unfinished_task(tmp_path, monkeypatch):
    full, cut = tmp_path / "full", tmp_path / "cut"
    evaluate.main(["--config", PRESET, f"run_dir={full}", SUBSET])
    calls, real = [], evaluate.run_task

    def dies_on_third(*args, **kw):
        calls.append(args[0].id)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(evaluate, "run_task", dies_on_third)
    with pytest.raises(SystemExit) as e:
        evaluate.main(["--config", PRESET, f"run_dir={cut}", SUBSET])
    assert e.value.code == 130 and len(_rows(cut)) == 2
    monkeypatch.setattr(evaluate, "run_task", real)
    with pytest.raises(SystemExit) as e:  # a fresh run over a checkpoint is refused
        evaluate.main(["--config", PRESET, f"run_dir={cut}", SUBSET])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:  # so is a resume with another number of attempts
        evaluate.main(["--config", PRESET, f"run_dir={cut}", SUBSET, "attempts=3", "--resume"])
    assert e.value.code == 2
    evaluate.main(["--config", PRESET, f"run_dir={cut}", SUBSET, "--resume"])
    assert _rows(cut) == _rows(full)


def test_bad_config_and_unknown_task(tmp_path, capsys):
    with pytest.raises(ConfigError, match="backend must be one of"):
        load_config(Config, None, ["backend=gpt"])
    with pytest.raises(ConfigError, match="unknown config key 'atempts'"):
        load_config(Config, None, ["atempts=2"])
    with pytest.raises(SystemExit) as e:
        evaluate.main([f"run_dir={tmp_path / 'r'}", "tasks=[nope]"])
    assert e.value.code == 2 and "unknown task id(s) nope; the suite has: cagr_ceo" in capsys.readouterr().err


def test_run_refuses_missing_backends(capsys, monkeypatch):
    from paperlab.agent import run

    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    for argv, message in (
        (["task=hi"], "backend=scripted replays"),
        (["backend=openai", "task=hi"], "backend=openai needs base_url"),
        (["backend=hf", "task=hi"], "backend=hf needs model_dir"),
        (["backend=openai"], "no task"),
    ):
        with pytest.raises(SystemExit) as e:
            run.main(argv)
        assert e.value.code == 2 and message in capsys.readouterr().err


def test_run_one_task_writes_a_trace_and_a_self_check_lesson(tmp_path, monkeypatch, capsys):
    from paperlab.agent import run
    from paperlab.agent.llm import ScriptedModel
    from paperlab.agent.memory import LongTermMemory

    script = {
        "plan": ["1. calculator\n2. answer"],
        "act": [{"tool": "calculator", "arguments": {"expression": "14 * 3/8"}}, {"answer": "21/4 cups"}],
        "reflect": ["The answer is exact and came from the calculator; keep using it for fractions."],
    }
    monkeypatch.setattr(run, "make_model", lambda cfg: ScriptedModel(script))
    monkeypatch.chdir(tmp_path)
    run.main(["task=How many cups for 14 batches of 3/8 cup?", f"run_dir={tmp_path / 'r'}"])
    assert capsys.readouterr().out.startswith("21/4 cups")
    md = (tmp_path / "r" / "trace.md").read_text()
    assert "### Reflection (finished task)" in md and "21/4 (≈ 5.25)" in md
    memory = LongTermMemory(tmp_path / "runs" / "agent" / "memory.sqlite")  # persists across runs
    assert "keep using it for fractions" in memory.search("cups of a fraction", k=1)[0][1]


def test_report_writes_tables_and_headline_from_results(tmp_path):
    from paperlab.agent import report

    run = tmp_path / "runs" / "scripted"
    evaluate.main([f"run_dir={run}", "tasks=[bridge_years,revenue_growth]", "attempts=1"])
    readme = tmp_path / "README.md"
    readme.write_text(
        "<!-- report:agent-summary -->\n<!-- /report:agent-summary -->\n<!-- report:agent-tasks -->\n"
        "<!-- /report:agent-tasks -->\n<!-- report:agent-machine -->\n<!-- /report:agent-machine -->\n"
    )
    index = tmp_path / "INDEX.md"
    index.write_text("| [agent](projects/agent) | <!-- headline:agent --> old |\n")
    report.main(
        [
            "--collect",
            str(tmp_path / "runs"),
            "--results",
            str(tmp_path / "results"),
            "--readme",
            str(readme),
            "--index",
            str(index),
        ]
    )
    text = readme.read_text()
    assert "| scripted (scripted) | reflection | 2 | 50% (k=1) | 50% |" in text
    assert "| `revenue_growth` |" in text and "✗ (answer)" in text and "sandbox isolation:" in text
    assert (tmp_path / "results" / "scripted" / "traces" / "bridge_years-reflection-a1.md").is_file()
    assert "success 50% without / 50% with reflection" in index.read_text()
