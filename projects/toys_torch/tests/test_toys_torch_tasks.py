"""The three task commands end to end on tiny generated data, their config and their one-line errors."""

import json

import pytest

from paperlab.shared.config import ConfigError, load_config
from paperlab.toys_torch.config import Config


def tiny_lm(section: str, steps: int = 30) -> list[str]:
    return [
        f"{section}.lm.{k}={v}"
        for k, v in dict(
            vocab_size=320,
            d_model=32,
            n_layers=2,
            n_heads=4,
            n_kv_heads=2,
            ffn=64,
            context=32,
            train_steps=steps,
            batch_size=8,
            log_every=10,
            checkpoint_every=10,
        ).items()
    ]


def run(module, args, capsys):
    import importlib

    with pytest.raises(SystemExit) as e:
        importlib.import_module(f"paperlab.toys_torch.{module}").main(args)
        raise SystemExit(0)
    return e.value.code, capsys.readouterr().err


def test_config_checks_values():
    cfg = load_config(Config, None, ["task=sonnet_sft", "seed=3"])
    assert cfg.run_dir == "runs/toys_torch/sonnet_sft/seed3"
    for bad in (
        ["task=ppo"],
        ["beam_search.early_stopping=maybe"],
        ["sonnet_sft.methods=[full,lora]"],
        ["red_team.detector=perspective"],
        ["sonnet_sft.lm.n_kv_heads=3"],
        ["beam_search.widths=[0,2]"],
    ):
        with pytest.raises(ConfigError):
            load_config(Config, None, bad)


def test_beam_search_end_to_end(data_files, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no task-7 run in sight: the command trains its own small LM
    args = [
        f"beam_search.plays_path={data_files['plays']}",
        "beam_search.widths=[1,3]",
        "beam_search.shown_width=3",
        "beam_search.max_new_tokens=6",
        "beam_search.timing_repeats=1",
        'beam_search.contexts=["ROMEO:","KING:"]',
        f"run_dir={tmp_path}/bs",
        *tiny_lm("beam_search"),
    ]
    code, err = run("beam_search", args, capsys)
    assert code == 0, err
    ev = json.loads((tmp_path / "bs" / "eval.json").read_text())
    assert [r["width"] for r in ev["rows"]] == [1, 3]
    assert all(c["sequences_equal"] and c["max_score_diff"] == 0.0 for c in ev["hf_check"])
    assert ev["rows"][1]["top1_score_mean"] >= ev["rows"][0]["top1_score_mean"] - 1e-6  # wider finds no worse
    nbest = json.loads((tmp_path / "bs" / "nbest.json").read_text())["3"]
    assert len(nbest) == 2 and all(len(c["hypotheses"]) == 3 for c in nbest)
    rows = [json.loads(x) for x in (tmp_path / "bs" / "lm" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["val_ppl"] < 0.5 * 320  # it learned something: well below a uniform guess
    code, err = run("beam_search", args, capsys)  # a fresh run over a run with checkpoints is refused
    assert code == 2 and "already holds a run" in err
    code, err = run("beam_search", [*args, "red_team.threshold=0.6", "--resume"], capsys)  # other sections: fine
    assert code == 0, err
    code, err = run("beam_search", [*args, "beam_search.length_penalty=0.5", "--resume"], capsys)
    assert code == 2 and "differs from this config" in err


@pytest.mark.slow
def test_sonnet_sft_end_to_end(data_files, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = [
        f"sonnet_sft.plays_path={data_files['plays']}",
        f"sonnet_sft.sonnets_path={data_files['sonnets']}",
        "sonnet_sft.n_heldout=3",
        "sonnet_sft.methods=[full,lora2]",
        "sonnet_sft.sft_steps=10",
        "sonnet_sft.n_samples=4",
        "sonnet_sft.max_new_tokens=24",
        f"run_dir={tmp_path}/s",
        *tiny_lm("sonnet_sft"),
    ]
    code, err = run("sonnet_sft", args, capsys)
    assert code == 0, err
    rows = json.loads((tmp_path / "s" / "eval.json").read_text())["rows"]
    assert {"base", "full", "lora2", "held-out sonnets (real)"} <= set(rows)
    assert rows["full"]["ppl_heldout_sonnets"] < rows["base"]["ppl_heldout_sonnets"]  # fine-tuning helps
    assert (tmp_path / "s" / "sft_lora2" / "model" / "config.json").is_file()
    first = json.loads((tmp_path / "s" / "eval.json").read_text())["trainable_params"]
    code, err = run("sonnet_sft", [*args, "--resume"], capsys)  # finished stages are skipped, evaluation reruns
    assert code == 0, err
    again = json.loads((tmp_path / "s" / "eval.json").read_text())
    assert again["trainable_params"] == first and 0 < first["lora2"] < first["full"]
    assert again["rows"]["full"]["ppl_heldout_sonnets"] == rows["full"]["ppl_heldout_sonnets"]


def test_red_team_end_to_end(data_files, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    args = [
        f"red_team.dialogue_path={data_files['dialogues']}",
        "red_team.n_zero_shot=6",
        "red_team.n_few_shot=3",
        "red_team.few_shot_k=2",
        "red_team.n_probe_replies=1",
        "red_team.max_reply_tokens=8",
        "red_team.max_question_tokens=8",
        "red_team.n_bootstrap=100",
        "red_team.n_detector_eval=20",
        f"run_dir={tmp_path}/r",
        *tiny_lm("red_team", steps=20),
    ]
    code, err = run("red_team", args, capsys)
    assert code == 0, err
    ev = json.loads((tmp_path / "r" / "eval.json").read_text())
    assert set(ev["methods"]) == {"human", "zero_shot", "few_shot"}
    assert ev["methods"]["zero_shot"]["n"] == 6 and set(ev["bias"]) == {"gender", "religion", "origin"}
    assert ev["detector_check"]["hh_pairs"]["n_pairs"] > 0
    assert "Content warning" in (tmp_path / "r" / "flagged.md").read_text()


def test_missing_data_and_missing_weights_are_one_line_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, err = run("sonnet_sft", [f"run_dir={tmp_path}/x", "sonnet_sft.plays_path=nope.txt"], capsys)
    assert code == 2 and "plays not found at nope.txt" in err and "char-rnn" in err and len(err.splitlines()) == 1
    code, err = run("beam_search", [f"run_dir={tmp_path}/y", f"beam_search.model_dir={tmp_path}/no-model"], capsys)
    assert code == 2 and "cannot load beam_search.model_dir" in err
    code, err = run("red_team", [f"run_dir={tmp_path}/z", "red_team.detector=detoxify"], capsys)
    assert code == 2 and "pip install detoxify" in err


def test_real_llama_path_is_a_one_line_error_offline(data_files, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    data = [
        f"sonnet_sft.plays_path={data_files['plays']}",
        f"sonnet_sft.sonnets_path={data_files['sonnets']}",
        "sonnet_sft.n_heldout=3",
    ]
    code, err = run("sonnet_sft", [f"run_dir={tmp_path}/a", *data, f"sonnet_sft.real_model={tmp_path}/llama"], capsys)
    assert code == 2 and "cannot load the Llama checkpoint" in err and "huggingface-cli download" in err
    if __import__("torch").cuda.is_available():
        return  # on a GPU machine 4-bit loading is allowed
    code, err = run(
        "sonnet_sft",
        [f"run_dir={tmp_path}/b", *data, "sonnet_sft.real_model=x", "sonnet_sft.load_in_4bit=true"],
        capsys,
    )
    assert code == 2 and "needs a CUDA GPU" in err
