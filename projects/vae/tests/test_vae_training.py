"""End-to-end behaviour: learning, resume, the code prior, evaluation, and bad input."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest
import torch
from PIL import Image

from paperlab.shared.checkpoint import CheckpointError
from paperlab.shared.config import ConfigError, load_config
from paperlab.shared.idx import write_idx
from paperlab.vae.checkpoint import load_model, load_run
from paperlab.vae.config import Config
from paperlab.vae.data import DatasetError, load_celeba_data, load_digits_data, load_mnist_data, load_olivetti_data
from paperlab.vae.evaluate import evaluate
from paperlab.vae.prior import train_prior
from paperlab.vae.train import train

TINY = dict(
    dataset="digits",
    channels=[16, 16],
    latent_dim=4,
    codebook_size=16,
    code_dim=4,
    batch_size=32,
    total_steps=60,
    eval_every=30,
    eval_max_images=100,
    checkpoint_every=20,
    lr=2e-3,
    prior_steps=60,
    prior_dim=16,
    prior_layers=1,
    prior_heads=2,
    prior_batch_size=32,
)


@pytest.fixture(scope="module")
def digits():
    return load_digits_data(16)


def _cfg(tmp_path, name="run", **kw) -> Config:
    return Config(**{**TINY, "run_dir": str(tmp_path / name), **kw})


def _rows(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_vae_training_lowers_the_negative_elbo_and_logs_both_terms_every_step(tmp_path, digits):
    cfg = _cfg(tmp_path, total_steps=120)
    summary = train(cfg, data=digits)
    rows = [r for r in _rows(tmp_path / "run") if "recon" in r]
    assert [r["step"] for r in rows] == list(range(1, 121))
    for r in rows:
        assert r["nelbo"] == pytest.approx(r["recon"] + r["kl"], rel=1e-5) and r["kl"] >= 0
    first, last = np.mean([r["nelbo"] for r in rows[:10]]), np.mean([r["nelbo"] for r in rows[-10:]])
    assert last < first - 20, (first, last)
    test = summary["test"]
    assert test["nelbo"] == pytest.approx(test["recon"] + test["kl"])
    assert test["bits_per_dim"] == pytest.approx(test["nelbo"] / (256 * np.log(2)))
    assert (tmp_path / "run" / "model.pt").exists()


def test_vqvae_training_lowers_the_reconstruction_loss_and_logs_codebook_use(tmp_path, digits):
    cfg = _cfg(tmp_path, model="vqvae", total_steps=100, dead_code_every=25)
    train(cfg, data=digits)
    rows = [r for r in _rows(tmp_path / "run") if "recon" in r]
    assert all("perplexity" in r and "code_usage" in r and "commit_loss" in r for r in rows)
    assert np.mean([r["recon"] for r in rows[-10:]]) < np.mean([r["recon"] for r in rows[:10]]) - 20
    resets = [r["dead_codes_reset"] for r in rows if "dead_codes_reset" in r]
    assert len(resets) == 4
    assert rows[-1]["perplexity"] > 1.5


def test_code_prior_learns_and_evaluation_writes_the_bound_and_figures(tmp_path, digits):
    cfg = _cfg(tmp_path, model="vqvae", total_steps=60)
    train(cfg, data=digits)
    summary = train_prior(tmp_path / "run", data=digits)
    rows = [json.loads(x) for x in (tmp_path / "run" / "prior" / "metrics.jsonl").read_text().splitlines()]
    assert np.mean([r["prior_nll"] for r in rows[-5:]]) < np.mean([r["prior_nll"] for r in rows[:5]])
    assert summary["test_nll"] < summary["uniform_nll"]  # beats the uniform prior of VQ-VAE training
    res = evaluate(tmp_path / "run", iw_samples=0)
    t = res["test"]
    assert t["nll_bound"] == pytest.approx(t["recon"] + t["prior_nll"])
    assert t["nll_bound"] < res["uniform_prior_bound"]["nll"]
    for name in ("recon.png", "samples.png", "eval.json"):
        assert (tmp_path / "run" / name).exists()


def test_vae_evaluation_importance_bound_is_tighter_than_the_elbo(tmp_path, digits):
    train(_cfg(tmp_path, total_steps=60), data=digits)
    res = evaluate(tmp_path / "run", iw_samples=20, iw_images=100)
    assert res["importance"]["nll"] < res["test"]["nelbo"]
    with Image.open(tmp_path / "run" / "interpolation.png") as im:
        assert im.size[0] > im.size[1]  # rows of 10 steps
    # the plain autoencoder trains too (no KL), as the ablation of the REPORT
    s = train(_cfg(tmp_path, "ae", model="ae", total_steps=20), data=digits)
    assert "kl" not in s["test"] and s["test"]["recon"] > 0


def test_resume_continues_exactly(tmp_path, digits):
    full = _cfg(tmp_path, "full", total_steps=40, checkpoint_every=10)
    train(full, data=digits)
    part = _cfg(tmp_path, "part", total_steps=40, checkpoint_every=10)
    out = train(part, stop_after_steps=25, data=digits)
    assert out["steps"] == 25 and out["finished"] is False
    assert json.loads((tmp_path / "part" / "summary.json").read_text())["finished"] is False
    train(part, resume=True, data=digits)
    a = torch.load(tmp_path / "full" / "model.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "part" / "model.pt", weights_only=False)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r["step"] for r in _rows(tmp_path / "part") if "recon" in r] == list(range(1, 41))
    strip = [{k: v for k, v in r.items() if k != "time"} for r in _rows(tmp_path / "part")]
    assert strip == [{k: v for k, v in r.items() if k != "time"} for r in _rows(tmp_path / "full")]
    s = json.loads((tmp_path / "part" / "summary.json").read_text())
    assert {"steps", "wall_time_s", "finished", "seed", "device"} <= set(s) and s["steps"] == 40 and s["finished"]
    with pytest.raises(ConfigError, match="latent_dim: 4 in checkpoint .*, 8 now"):
        train(_cfg(tmp_path, "part", total_steps=50, latent_dim=8), resume=True, data=digits)
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        train(_cfg(tmp_path, "nothing"), resume=True, data=digits)


def test_wrong_image_size_for_a_checkpoint_is_refused(tmp_path, digits):
    train(_cfg(tmp_path, total_steps=5), data=digits)
    with pytest.raises(CheckpointError, match="1x16x16 images .* cannot be used on 1x32x32"):
        load_model(tmp_path / "run" / "model.pt", image_shape=(1, 32, 32))
    with pytest.raises(CheckpointError, match="1x16x16"):
        load_run(tmp_path / "run", ["image_size=32"])
    model, cfg, _ = load_model(tmp_path / "run" / "model.pt")
    assert cfg.latent_dim == TINY["latent_dim"]
    with pytest.raises(ValueError, match=r"takes images of shape \(1, 16, 16\)"):
        model(torch.zeros(2, 1, 32, 32))


def test_nan_loss_stops_with_the_step(tmp_path, digits, monkeypatch):
    from paperlab.vae import model as model_mod

    real = model_mod.VAE.forward
    calls = {"n": 0}

    def poisoned(self, x, beta=1.0):
        calls["n"] += 1
        out = real(self, x, beta)
        if calls["n"] == 7 and self.training:
            out["loss"] = out["loss"] * float("nan")
        return out

    monkeypatch.setattr(model_mod.VAE, "forward", poisoned)
    with pytest.raises(FloatingPointError, match="non-finite loss=nan at step 7; no checkpoint was written yet"):
        train(_cfg(tmp_path, eval_every=0), data=digits)


def test_config_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="unknown config key 'latent_dims'"):
        load_config(Config, None, ["latent_dims=3"])
    with pytest.raises(ConfigError, match="model must be one of"):
        load_config(Config, None, ["model=gan"])
    with pytest.raises(ConfigError, match="not divisible"):
        load_config(Config, None, ["dataset=mnist", "data_dir=x", "channels=[8,8,8]"])
    with pytest.raises(ValueError, match="needs data_dir"):
        Config(dataset="olivetti", data_dir="")
    with pytest.raises(ConfigError, match="divisible by prior_heads"):
        load_config(Config, None, ["prior_dim=30", "prior_heads=4"])


def test_mnist_loader_names_missing_files_and_reads_idx(tmp_path):
    rng = np.random.default_rng(0)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (5, 28, 28)))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", rng.integers(0, 10, (5,)))
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (3, 28, 28)))
    with pytest.raises(DatasetError, match="missing t10k-labels-idx1-ubyte.gz"):
        load_mnist_data(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", rng.integers(0, 10, (3,)))
    data = load_mnist_data(tmp_path)
    assert len(data.train) == 5 and len(data.test) == 3 and data.shape == (1, 28, 28)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x03" + b"\x00" * 12 + b"x"))
    with pytest.raises(ValueError, match="header says shape"):  # paperlab.shared.idx refuses it
        load_mnist_data(tmp_path)


def test_olivetti_and_celeba_loaders_say_what_is_missing(tmp_path):
    with pytest.raises(DatasetError, match="missing .*olivettifaces.mat"):
        load_olivetti_data(tmp_path)
    with pytest.raises(DatasetError, match=r"missing .*img_align_celeba.*celeba64.*list_eval_partition.txt"):
        load_celeba_data(tmp_path)


def test_celeba_folder_is_cropped_and_resized(tmp_path):
    folder = tmp_path / "img_align_celeba"
    folder.mkdir()
    rng = np.random.default_rng(0)
    lines = []
    for i in range(4):
        arr = rng.integers(0, 256, (218, 178, 3), dtype=np.uint8)
        arr[109 - 74 : 109 + 74, 89 - 74 : 89 + 74] = 200  # the centre 148x148 crop is flat grey
        Image.fromarray(arr).save(folder / f"{i + 1:06d}.jpg", quality=95)
        lines.append(f"{i + 1:06d}.jpg {0 if i < 3 else 2}")
    (tmp_path / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    data = load_celeba_data(tmp_path, 64)
    assert len(data.train) == 3 and len(data.test) == 1
    x = data.train.get(torch.tensor([0, 2]))
    assert x.shape == (2, 3, 64, 64) and x.dtype == torch.uint8
    assert abs(x.float().mean().item() - 200) < 6  # only the crop, not the noisy border, survives
    (folder / "000002.jpg").unlink()
    with pytest.raises(DatasetError, match="000002.jpg"):
        load_celeba_data(tmp_path, 64)


def test_celeba_loader_applies_the_recipe_of_the_64px_copy_and_the_copy_loads_as_folder_and_archive(tmp_path):
    """Official folder: the loader's output equals Pillow's centre crop (left 15, top 35, 148x148) + bicubic
    resize of the decoded file, the recipe data/celeba64 was made with; that copy (a folder of 64x64 JPEGs
    or its .tar.gz) loads to the same images, the last 10% by name as the test set."""
    import tarfile

    official, folder = tmp_path / "official" / "img_align_celeba", tmp_path / "small" / "celeba64"
    official.mkdir(parents=True)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    expected = []
    for i in range(10):
        yy, xx = np.mgrid[0:218, 0:178]
        arr = np.stack([(xx * 1.3 + 40 * i) % 256, (yy * 1.1) % 256, rng.integers(0, 256, (218, 178))], -1)
        Image.fromarray(arr.astype(np.uint8)).save(official / f"{i + 1:06d}.jpg", quality=95)
        with Image.open(official / f"{i + 1:06d}.jpg") as im:
            crop = im.convert("RGB").crop((15, 35, 163, 183)).resize((64, 64), Image.BICUBIC)
        expected.append(torch.from_numpy(np.asarray(crop).copy()).permute(2, 0, 1))
        crop.save(folder / f"{i + 1:06d}.jpg", quality=90)
    data = load_celeba_data(tmp_path / "official", 64)  # no partition file: the last 10% are the test set
    got = torch.cat([data.train.get(torch.arange(9)), data.test.get(torch.tensor([0]))])
    assert torch.equal(got, torch.stack(expected))
    with tarfile.open(tmp_path / "small" / "celeba64-8k.tar.gz", "w:gz") as tar:
        tar.add(folder, arcname="celeba64")
    from_folder = load_celeba_data(tmp_path / "small", 64)
    (tmp_path / "only-tar").mkdir()
    (tmp_path / "small" / "celeba64-8k.tar.gz").rename(tmp_path / "only-tar" / "celeba64-8k.tar.gz")
    from_tar = load_celeba_data(tmp_path / "only-tar", 64)
    for d in (from_folder, from_tar):
        assert (len(d.train), len(d.test)) == (9, 1)
        assert torch.equal(d.test.get(torch.tensor([0])), from_folder.test.get(torch.tensor([0])))
    assert torch.equal(from_tar.train.get(torch.arange(9)), from_folder.train.get(torch.arange(9)))
    # the re-encoded 64x64 JPEG is within JPEG error of the crop it was saved from
    assert (from_folder.train.get(torch.arange(9)).float() - torch.stack(expected[:9]).float()).abs().mean() < 8
