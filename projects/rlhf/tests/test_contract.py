"""Bad input: one clear line naming the thing; configs; preference files; the reward model's metrics."""

from __future__ import annotations

import gzip
import json

import pytest
import torch

from paperlab.rlhf.config import Config
from paperlab.rlhf.data import read_hh, read_preferences, read_shakespeare, speeches, split_rows
from paperlab.rlhf.reward import pair_metrics
from paperlab.shared.config import ConfigError, load_config


def test_preference_file_with_a_missing_field_names_the_line(tmp_path):
    p = tmp_path / "pairs.jsonl"
    p.write_text('{"prompt": "a", "chosen": "b", "rejected": "c"}\n\n{"prompt": "a", "chosen": "b"}\n')
    with pytest.raises(ValueError, match=r"line 3: missing or non-text field\(s\) rejected"):
        read_preferences(p)
    p.write_text('{"prompt": "a", "chosen": "b", "rejected": "c"}\nnot json\n')
    with pytest.raises(ValueError, match="line 2: not valid JSON"):
        read_preferences(p)
    with pytest.raises(FileNotFoundError, match="make pairs"):
        read_preferences(tmp_path / "none.jsonl")


def test_hh_reader_and_missing_data_messages(tmp_path):
    with pytest.raises(FileNotFoundError, match="hh_data_dir"):
        read_hh(tmp_path)
    with pytest.raises(FileNotFoundError, match="data_dir"):
        read_shakespeare(tmp_path)
    with gzip.open(tmp_path / "harmless-base_test.jsonl.gz", "wt") as f:
        f.write(json.dumps({"chosen": "\n\nHuman: hi\n\nAssistant: no", "rejected": "x"}) + "\n")
        f.write(json.dumps({"chosen": "y"}) + "\n")
    with pytest.raises(ValueError, match="line 2: missing .* rejected"):
        read_hh(tmp_path)


def test_config_validation():
    with pytest.raises(ValueError, match="kl_estimator"):
        Config(kl_estimator="k2")
    with pytest.raises(ValueError, match="multiple of ppo_minibatch_size"):
        Config(ppo_batch_size=10, ppo_minibatch_size=4)
    with pytest.raises(ConfigError, match="unknown config key 'kl_coeff'"):
        load_config(Config, None, ["kl_coeff=0.1"])
    assert Config(seed=3).out_dir == "runs/rlhf/shakespeare/seed3"
    with pytest.raises(ValueError, match="gold must be one of"):
        Config(gold="human")


def test_speeches_and_split():
    assert speeches("A:\nhi.\n\n\nB:\nho.\n\n") == ["A:\nhi.", "B:\nho."]
    train, test = split_rows(list(range(10)), 0.2, seed=0)
    assert len(test) == 2 and sorted(train + test) == list(range(10))
    assert split_rows(list(range(10)), 0.2, seed=0) == (train, test)


def test_pair_metrics_accuracy_and_calibration():
    rc, rr = torch.tensor([3.0, 3.0, 0.0, -3.0]), torch.tensor([0.0, 0.0, 3.0, 0.0])
    m = pair_metrics(rc, rr, n_bins=10)
    assert m["accuracy"] == 0.5 and m["pairs"] == 4
    # sigmoid(+-3) in both orders: four predictions of 0.95, two of them right; the model is overconfident
    top = [c for c in m["calibration"] if c["bin"] == 9][0]
    assert top["n"] == 4 and top["observed"] == 0.5 and top["predicted"] == pytest.approx(0.9526, abs=1e-4)
    assert m["ece"] == pytest.approx(0.4526, abs=1e-4)
    assert sum(c["n"] for c in m["calibration"]) == 8
