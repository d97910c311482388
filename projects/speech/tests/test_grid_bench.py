"""The experiment grid's job list and the benchmark's feature timing (no training, no real data)."""

from __future__ import annotations

from pathlib import Path

import pytest

from paperlab.shared.config import load_config
from paperlab.speech import grid
from paperlab.speech.bench import bench_features
from paperlab.speech.config import Config

GROUPS = ["models", "augment", "cross", "mels", "stronger", "speakernorm", "adapt"]


def test_every_grid_job_is_a_valid_config_with_its_own_run_dir(tmp_path):
    todo = grid.jobs(GROUPS, tmp_path)
    dirs = [run_dir for run_dir, _, _ in todo]
    assert len(set(dirs)) == len(dirs)
    for run_dir, preset, overrides in todo:
        cfg = load_config(Config, preset, overrides)  # a typo in an override or an emotion name fails here
        assert cfg.run_dir == run_dir and f"seed{cfg.seed}" in Path(run_dir).name
    best = {Path(d).name: o for d, _, o in todo}["aesdd-cnn-best-seed1"]
    assert set(grid.PITCH + grid.STRETCH) <= set(best) and not set(grid.MIXUP) & set(best)


def test_transfer_jobs_start_from_their_own_seeds_pretraining_and_ensembles_are_grid_rows(tmp_path):
    from paperlab.speech.ensemble import ENSEMBLES

    todo = {Path(d).name: o for d, _, o in grid.jobs(GROUPS, tmp_path)}
    for s in (1, 2, 3):
        assert f"init_from={tmp_path}/cross/ravdess-to-aesdd-cnn-seed{s}" in todo[f"aesdd-cnn-transfer-seed{s}"]
    pre = f"init_from={tmp_path}/stronger/ravdess-to-aesdd-cnn-m32-e30-seed1"
    assert pre in todo["aesdd-cnn-m32-e30-transfer-seed1"] and "ravdess-to-aesdd-cnn-m32-e30-seed1" in todo
    rel = {str(Path(d).relative_to(tmp_path)) for d, _, _ in grid.jobs(GROUPS, tmp_path)}
    for name, members in ENSEMBLES.items():
        assert set(members) <= rel, name
        assert len({m.rsplit("-seed", 1)[1] for m in members}) == 3  # all three seeds, never a pick


def test_only_selects_jobs_and_names_the_unknown_ones(tmp_path):
    picked = grid.jobs(GROUPS, tmp_path, only=("ravdess-crnn-seed1", "aesdd-cnn-mels128-seed1"))
    assert sorted(Path(d).name for d, _, _ in picked) == ["aesdd-cnn-mels128-seed1", "ravdess-crnn-seed1"]
    with pytest.raises(ValueError, match="nope-seed1"):
        grid._main(["--groups", "models", "--root", str(tmp_path), "--only", "nope-seed1"])


def test_bench_features_times_every_readable_clip(tiny_aesdd):
    cfg = Config(dataset="aesdd", data_dir=str(tiny_aesdd))
    out = bench_features(cfg, n_clips=5)
    assert out["clips"] == 5 and out["audio_s"] == pytest.approx(2.5)
    assert out["ms_per_clip"] == pytest.approx(out["ms_read"] + out["ms_preprocess"] + out["ms_logmel"])
    assert 0 < out["real_time_factor"] < 10
