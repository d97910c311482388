"""The run contract (resume, refused inputs, checkpoints of another group), the data builders on
generated files, and one short end-to-end run that beats chance."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from paperlab.gcnn import data as data_mod
from paperlab.gcnn.checkpoint import load_model
from paperlab.gcnn.config import Config
from paperlab.gcnn.data import (
    EUROSAT_CLASSES,
    build_mnist_rot,
    downsample,
    load_data,
    load_eurosat_arrays,
    make_shapes,
    stratified_split,
)
from paperlab.gcnn.model import build_model, matched_width, n_params
from paperlab.gcnn.train import main as train_main
from paperlab.gcnn.train import train
from paperlab.shared.checkpoint import CheckpointError
from paperlab.shared.config import ConfigError, load_config
from paperlab.shared.idx import write_idx

TINY = dict(
    dataset="shapes",
    shapes_train=96,
    shapes_size=16,
    base_width=2,
    width_mults=[1, 2],
    pool_after=[1],
    kernel_size=3,
    epochs=2,
    batch_size=16,
    checkpoint_every=3,
    tensorboard=False,
    test_angles=[0.0, 90.0, 45.0],
)


def _cfg(tmp_path, name="run", **kw) -> Config:
    return Config(**{**TINY, "run_dir": str(tmp_path / name), **kw})


def test_resume_equals_an_uninterrupted_run(tmp_path):
    full = train(_cfg(tmp_path, "full"))
    part = train(_cfg(tmp_path, "part"), stop_after_steps=5)
    assert not part["finished"] and part["steps"] == 5
    resumed = train(_cfg(tmp_path, "part"), resume=True)
    assert resumed["finished"]
    a = torch.load(tmp_path / "full" / "model.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "part" / "model.pt", weights_only=False)["model"]
    for k in a:
        assert torch.equal(a[k], b[k]), k
    assert resumed["test_acc"] == full["test_acc"]
    # the metrics read as one run: no duplicated step rows after the resume
    steps = [
        json.loads(line)["step"]
        for line in (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()
        if "loss" in line
    ]
    assert steps == sorted(set(steps))


def test_fresh_run_over_a_checkpoint_and_resume_without_one_are_refused(tmp_path):
    train(_cfg(tmp_path), stop_after_steps=3)
    with pytest.raises(ValueError, match="resume"):
        train(_cfg(tmp_path))
    with pytest.raises((ValueError, FileNotFoundError)):
        train(_cfg(tmp_path, "other"), resume=True)
    with pytest.raises(ValueError, match="seed"):
        train(_cfg(tmp_path, seed=5), resume=True)


def test_checkpoint_of_another_group_is_refused(tmp_path):
    train(_cfg(tmp_path, "c4", model="c4", epochs=1))
    with pytest.raises(CheckpointError, match="c4 model"):
        load_model(tmp_path / "c4" / "model.pt", model="c8")
    with pytest.raises(CheckpointError, match="c4"):
        train(_cfg(tmp_path, "c4", model="c8", epochs=1), resume=True)
    net, cfg, meta = load_model(tmp_path / "c4" / "model.pt", model="c4")
    assert cfg.model == "c4" and meta["n_params"] == n_params(net)


def test_cli_errors_are_one_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        train_main(["dataset=eurosat", f"data_dir={tmp_path / 'nowhere'}", f"run_dir={tmp_path / 'r'}"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nowhere" in err[0] and "EuroSAT" in err[0]
    with pytest.raises(SystemExit) as e:
        train_main(["model=c5"])
    assert e.value.code == 2
    with pytest.raises(ConfigError):
        load_config(Config, None, ["no_such_key=1"])
    with pytest.raises(ValueError, match="odd"):
        Config(kernel_size=4)


def test_short_run_beats_chance(tmp_path):
    kw = dict(shapes_train=640, shapes_size=24, base_width=6, width_mults=[1, 2, 2], pool_after=[1, 2])
    summary = train(_cfg(tmp_path, **kw, kernel_size=5, epochs=6, batch_size=16, lr=3e-3, weight_decay=0.0))
    chance = 1 / 7
    assert summary["test_acc"]["0.0"] > chance + 0.3, summary["test_acc"]
    assert summary["test_acc"]["90.0"] == summary["test_acc"]["0.0"]  # C4: exactly invariant to 90 degrees
    ev = json.loads((tmp_path / "run" / "eval.json").read_text())
    assert max(ev["equivariance"]["90.0"]) < 1e-10


def test_matched_parameter_counts_are_close():
    counts = {}
    for m in ("cnn", "c4", "c8", "c16", "d4", "so2"):
        w = matched_width(m, 3, 10, 16, [1, 1, 2, 2, 4, 4], 5, [1, 3, 5])
        cfg = Config(model=m, base_width=16)
        counts[m] = n_params(build_model(cfg, 3, 10))
        assert w >= 1
    for c in counts.values():
        assert abs(c - counts["cnn"]) / counts["cnn"] < 0.15, counts


def test_stratified_split_is_fixed_disjoint_and_stratified():
    labels = np.repeat(np.arange(4), [100, 50, 80, 30])
    tr, va, te = stratified_split(labels, seed=0)
    assert len(set(tr) | set(va) | set(te)) == len(labels) == len(tr) + len(va) + len(te)
    for c, n in enumerate([100, 50, 80, 30]):
        assert (labels[tr] == c).sum() == round(0.8 * n)
    again = stratified_split(labels, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip((tr, va, te), again))


def test_mnist_rot_builder_on_generated_idx_files(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    for name, n in (("train", 60), ("t10k", 20)):
        write_idx(tmp_path / f"{name}-images-idx3-ubyte.gz", rng.integers(0, 255, (n, 28, 28)))
        write_idx(tmp_path / f"{name}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    up, tr, ty, te, tey = build_mnist_rot(tmp_path, seed=3, n_train=30, n_test=40)
    assert up.shape == tr.shape == (30, 28, 28) and te.shape == (40, 28, 28)
    assert not np.array_equal(up, tr)  # rotated
    again = build_mnist_rot(tmp_path, seed=3, n_train=30, n_test=40)
    assert all(np.array_equal(a, b) for a, b in zip((up, tr, ty, te, tey), again))
    cfg = Config(dataset="mnist_rot", data_dir=str(tmp_path), pool_after=[1, 3])
    monkeypatch.setattr(data_mod, "build_mnist_rot", lambda root, seed: (up, tr, ty, te, tey))
    data = load_data(cfg)
    assert data.train_x.shape == (30, 1, 28, 28) and len(data.test_y) == 40
    with pytest.raises(FileNotFoundError, match="t10k-images"):
        (tmp_path / "t10k-images-idx3-ubyte.gz").unlink()
        build_mnist_rot(tmp_path, seed=3)


def test_eurosat_loader_reads_the_official_layout(tmp_path):
    from PIL import Image

    folder = tmp_path / "2750"
    for i, c in enumerate(EUROSAT_CLASSES):
        (folder / c).mkdir(parents=True)
        for j in range(2):
            Image.fromarray(np.full((64, 64, 3), 20 * i + j, dtype=np.uint8)).save(folder / c / f"{c}_{j + 1}.jpg")
    images, labels = load_eurosat_arrays(tmp_path)
    assert images.shape == (20, 64, 64, 3) and list(np.bincount(labels)) == [2] * 10
    with pytest.raises(FileNotFoundError, match="2750"):
        load_eurosat_arrays(tmp_path / "2750" / "Forest")
    buf = io.BytesIO()
    Image.fromarray(np.zeros((32, 32, 3), dtype=np.uint8)).save(buf, "JPEG")
    (folder / "Forest" / "Forest_9.jpg").write_bytes(buf.getvalue())
    with pytest.raises(ValueError, match="64x64"):
        load_eurosat_arrays(tmp_path)


def test_image_size_mean_pools_exactly_and_refuses_sizes_that_break_c4():
    x = torch.randint(0, 256, (5, 3, 8, 8), dtype=torch.uint8)
    small = downsample(x, 4)
    manual = x.double().reshape(5, 3, 4, 2, 4, 2).mean(dim=(3, 5)).round().to(torch.uint8)
    assert small.shape == (5, 3, 4, 4) and torch.equal(small, manual)
    for k in (1, 2, 3):  # commutes exactly with 90-degree rotations and with the mirror image
        assert torch.equal(downsample(torch.rot90(x, k, (-2, -1)), 4), torch.rot90(small, k, (-2, -1)))
    assert torch.equal(downsample(torch.flip(x, (-1,)), 4), torch.flip(small, (-1,)))
    data = load_data(Config(**{**TINY, "image_size": 8}))
    full = load_data(Config(**TINY))
    assert data.train_x.shape[1:] == (1, 8, 8) and torch.equal(data.train_x, downsample(full.train_x, 8))
    assert torch.allclose(data.mean, data.train_x.float().mean(dim=(0, 2, 3)) / 255)  # statistics of the new size
    with pytest.raises(ValueError, match="multiple of 8"):  # 3 poolings: an odd side somewhere
        Config(image_size=36, pool_after=[1, 3, 5])
    with pytest.raises(ValueError, match="must divide"):  # 16 -> 6 is no whole-block mean
        load_data(Config(**{**TINY, "image_size": 6}))


def test_eurosat_cpu_preset_is_32px_and_parameter_matched():
    cfg = load_config(Config, str(Path(__file__).parents[3] / "configs/gcnn/eurosat_cpu.yaml"), [])
    assert cfg.image_size == 32 and cfg.dataset == "eurosat"
    counts = {m: n_params(build_model(Config(**{**vars(cfg), "model": m}), 3, 10)) for m in ("cnn", "c4", "d4", "so2")}
    assert 40_000 < counts["cnn"] < 60_000
    assert all(abs(c - counts["cnn"]) / counts["cnn"] < 0.15 for c in counts.values()), counts
    wide = n_params(build_model(Config(**{**vars(cfg), "model": "c4", "match": "width"}), 3, 10))
    assert wide > 3 * counts["c4"]  # the same channels as the CNN: ~4x the parameters


def test_shapes_are_deterministic_and_rotated():
    x, y = make_shapes(20, 16, seed=1)
    x2, y2 = make_shapes(20, 16, seed=1)
    assert torch.equal(x, x2) and torch.equal(y, y2) and x.shape == (20, 1, 16, 16)
    assert len(torch.unique(y)) > 3


def test_confusion_matrix_counts_and_pairs():
    from paperlab.gcnn.confusion import confused_pairs, confusion_matrix

    class Sign(torch.nn.Module):  # predicts class 1 for any bright image, 0 otherwise
        def forward(self, x):
            return torch.nn.functional.one_hot((x.flatten(1).sum(1) > 0).long(), 3).float()

    x = torch.tensor([0, 255, 255, 0], dtype=torch.uint8).view(4, 1, 1, 1)
    y = torch.tensor([0, 1, 2, 2])
    m = confusion_matrix(Sign(), x, y, torch.zeros(1, 1, 1), torch.ones(1, 1, 1), 3, batch=3)
    assert m.tolist() == [[1, 0, 0], [0, 1, 0], [1, 1, 0]]  # rows: true class; across two batches
    assert confused_pairs(m.tolist(), top=2) == [(0, 2, 1), (1, 2, 1)]
