"""The publish step keeps each fold's final training accuracy, and the anchor table measures the distance
to ~69% from the committed files."""

from __future__ import annotations

import json

from paperlab.speech import report


def _run(root, group, name, acc, cfg_extra=None, metrics=True):
    run = root / group / name
    run.mkdir(parents=True)
    cfg = {"channels": [8, 16, 32, 64], "n_mels": 64, "epochs": 12, "crop_seconds": 2.0, "folds": "loso"}
    cfg.update(cfg_extra or {})
    (run / "config.yaml").write_text("seed: 1\n")
    (run / "summary.json").write_text(json.dumps({"finished": True, "epoch_time_s": 2.0, "members": ["a", "b"]}))
    folds = [{"fold": "fold0", "accuracy": acc, "clips": ["x"], "p_pred": [0.5]}]
    ev = {"accuracy_mean": acc, "uar_mean": acc, "macro_f1_mean": acc, "accuracy_std": 0.0, "config": cfg}
    (run / "eval.json").write_text(json.dumps({**ev, "folds": folds, "emotions": ["a"], "pooled": {}}))
    if metrics:
        lines = [{"step": 1, "fold": 0, "train_acc": 0.4}, {"step": 2, "fold": 0, "train_acc": 0.9}]
        lines += [{"step": 3, "fold": 1, "train_acc": 0.7}]
        (run / "metrics.jsonl").write_text("\n".join(json.dumps(x) for x in lines))


def test_collect_keeps_the_final_training_accuracy_and_the_table_measures_the_gap(tmp_path):
    grid = tmp_path / "grid-runs"
    _run(grid, "models", "aesdd-cnn-seed1", 0.55)
    _run(grid, "stronger", "aesdd-cnn-m32-e30-seed1", 0.59, {"n_mels": 32, "epochs": 30})
    _run(grid, "ensemble", "aesdd-cnn-x3", 0.56, metrics=False)
    results = tmp_path / "results"
    assert report.collect(grid, results) == 3
    s = json.loads((results / "grid" / "stronger" / "aesdd-cnn-m32-e30-seed1" / "summary.json").read_text())
    assert s["final_train_acc"] == [0.9, 0.7] and s["first_epoch_train_acc"] == [0.4, 0.7]
    ev = json.loads((results / "grid" / "stronger" / "aesdd-cnn-m32-e30-seed1" / "eval.json").read_text())
    assert "clips" not in ev["folds"][0]  # per-clip lists are kept for the models group only
    table = report.stronger_table(report.load_runs(results)).splitlines()
    row = next(r for r in table if r.startswith("| 32 mels, 30 epochs |"))
    assert all(len(r.split("|")) == len(table[0].split("|")) for r in table)  # header and rows agree
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[1] == "LOSO, scratch, 32 mels, 30 ep, 8-16-32-64 ch, 2 s crops"
    assert cells[2:7] == ["59.0", "59.0", "+4.0", "10.0", "80"]
    ens = next(r for r in table if r.startswith("| ensemble of the 3 CNN seeds"))
    assert "| 56.0 | 56.0 | +1.0 | 13.0 | — |" in ens


def test_speakernorm_table_sets_each_row_beside_the_same_setting_without_it(tmp_path):
    grid = tmp_path / "grid-runs"
    base = {"dataset": "aesdd", "model": "cnn", "speaker_norm": "none"}
    _run(grid, "models", "aesdd-cnn-seed1", 0.55, base)
    _run(grid, "speakernorm", "aesdd-cnn-spkmean-seed1", 0.60, {**base, "speaker_norm": "mean"})
    _run(grid, "speakernorm", "ravdess-cnn-spkmean-seed1", 0.50, {**base, "dataset": "ravdess", "speaker_norm": "mean"})
    results = tmp_path / "results"
    assert report.collect(grid, results) == 3
    table = report.speakernorm_table(report.load_runs(results)).splitlines()
    assert all(len(r.split("|")) == len(table[0].split("|")) for r in table)
    aesdd = [c.strip() for c in next(r for r in table if r.startswith("| aesdd |")).split("|")[1:-1]]
    assert aesdd[3:] == ["mean", "60.0", "60.0", "55.0", "+5.0", "60.0 (55.0)", "9.0", "1"]
    ravdess = [c.strip() for c in next(r for r in table if r.startswith("| ravdess |")).split("|")[1:-1]]
    assert ravdess[6:10] == ["—", "—", "50.0 (—)", "—"]  # no baseline run, no anchor for RAVDESS


def test_adabn_table_sets_the_adapted_evaluation_beside_the_same_models_without_it(tmp_path):
    grid = tmp_path / "grid-runs"
    base = {"dataset": "aesdd", "model": "cnn", "test_dataset": ""}
    for s, (plain, adapted) in enumerate([(0.55, 0.66), (0.53, 0.70)], start=1):
        _run(grid, "models", f"aesdd-cnn-seed{s}", plain, base)
        _run(grid, "adabn", f"aesdd-cnn-seed{s}", adapted, {**base, "adapt_bn": True})
        _run(grid, "adabn-control", f"aesdd-cnn-seed{s}", plain - 0.01, {**base, "adapt_bn": True})
    _run(grid, "adapt", "aesdd-cnn-spkbatch-seed1", 0.64, {**base, "adapt_bn": True, "speaker_batches": True})
    results = tmp_path / "results"
    assert report.collect(grid, results) == 7
    table = report.adabn_table(report.load_runs(results)).splitlines()
    assert all(len(r.split("|")) == len(table[0].split("|")) for r in table)
    row = [c.strip() for c in next(r for r in table if "aesdd-cnn (models)" in r).split("|")[1:-1]]
    assert row[3:] == ["54.0 ± 1.4", "53.0 ± 1.4", "68.0 ± 2.8", "+14.0", "68.0 (54.0)", "1.0", "2"]  # 1 fold
    pilot = next(r for r in table if "aesdd-cnn-spkbatch (trained for it)" in r)
    assert "speaker batches | — | — | 64.0 | — |" in pilot
