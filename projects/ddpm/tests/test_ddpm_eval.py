"""Fréchet distance, the evaluation pipeline on a tiny checkpoint, the FID path's errors, the report."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import linalg

from paperlab.ddpm import evaluate as ev
from paperlab.ddpm import report
from paperlab.ddpm import train as train_mod
from paperlab.ddpm.classifier import classifier_warning, rotation_task, train_classifier
from paperlab.ddpm.config import Config
from paperlab.ddpm.data import load_digits_data
from paperlab.shared.config import load_config

torch.set_num_threads(1)


def test_frechet_distance_closed_forms():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(6, 6))
    cov = a @ a.T + 0.1 * np.eye(6)
    mu = rng.normal(size=6)
    assert ev.frechet_distance(mu, cov, mu, cov) == pytest.approx(0.0, abs=1e-8)
    # diagonal covariances: ||mu1 - mu2||^2 + sum (s1 - s2)^2
    s1, s2 = np.array([1.0, 2.0, 0.5]), np.array([0.5, 2.0, 3.0])
    d = ev.frechet_distance(np.zeros(3), np.diag(s1**2), np.ones(3), np.diag(s2**2))
    assert d == pytest.approx(3 + ((s1 - s2) ** 2).sum())
    # general case against scipy's sqrtm
    b = rng.normal(size=(6, 6))
    cov2 = b @ b.T
    mu2 = rng.normal(size=6)
    ref = ((mu - mu2) ** 2).sum() + np.trace(cov + cov2 - 2 * linalg.sqrtm(cov @ cov2).real)
    assert ev.frechet_distance(mu, cov, mu2, cov2) == pytest.approx(ref, rel=1e-6)
    mu_hat, cov_hat = ev.gaussian_stats(rng.normal(size=(20000, 2)) * [1, 3] + [2, 0])
    assert np.allclose(mu_hat, [2, 0], atol=0.05) and np.allclose(np.diag(cov_hat), [1, 9], rtol=0.05)


def test_fid_path_errors_are_clear(tmp_path):
    x = torch.zeros(2, 1, 8, 8, dtype=torch.uint8)
    with pytest.raises(FileNotFoundError, match="Inception weights file not found.*pt_inception"):
        ev.inception_fid(x, x, tmp_path / "missing.pth")
    weights = tmp_path / "w.pth"
    weights.write_bytes(b"")
    if importlib.util.find_spec("torchmetrics") is None:
        with pytest.raises(RuntimeError, match="pip install torchmetrics torch-fidelity"):
            ev.inception_fid(x, x, weights)


def test_rows_parse():
    assert ev.parse_row("ddim:50") == ("ddim", 50, 0.0) and ev.parse_row("ddim:20:1") == ("ddim", 20, 1.0)
    for bad in ("ddim", "euler:10", "ddim:x", "ddim:1:2:3"):
        with pytest.raises(ValueError, match="bad row"):
            ev.parse_row(bad)


def test_classifier_warning_names_the_shortfall():
    assert classifier_warning("mnist", 0.995) is None and classifier_warning("celeba", 0.97) is None
    assert "95%" in classifier_warning("celeba", 0.9)  # the rotation task of the faces
    w = classifier_warning("mnist", 0.857)
    assert w.startswith("warning:") and "85.7%" in w and "99%" in w
    assert "27.5%" in classifier_warning("olivetti", 0.275)


def test_committed_readme_and_report_blocks_match_the_committed_results():
    """Drift check: every generated block in README.md/REPORT.md equals what the committed files give."""
    root = Path(__file__).parents[1]
    stale = report.stale_blocks(root / "results", [root / "README.md", root / "REPORT.md"])
    assert not stale, f"run make report-ddpm: {stale}"
    text = (root / "README.md").read_text() + (root / "REPORT.md").read_text()
    for name in report.report_blocks(root / "results"):  # every block lands somewhere
        assert f"<!-- report:{name} -->" in text, name


def test_evaluate_and_report_on_a_tiny_run(tmp_path, capsys):
    run = tmp_path / "run"
    cfg = load_config(
        Config,
        None,
        [
            "image_size=8",
            "base_channels=8",
            "channel_mults=[1,2]",
            "attn_resolutions=[4]",
            "groups=4",
            "timesteps=20",
            "total_steps=4",
            "log_every=2",
            "num_samples=4",
            "sample_steps=3",
            f"run_dir={run}",
        ],
    )
    train_mod.train(cfg, data=load_digits_data(8))
    out = run / "eval.json"
    res = ev.evaluate(
        run / "checkpoints" / "last.pt", ["ddim:2", "ddim:3:1"], [True, False], 12, out, classifier_epochs=6, batch=8
    )
    assert len(res["rows"]) == 4 and res["classifier_test_accuracy"] > 0.3  # 10 classes: chance is 0.1
    assert all(r["fd_classifier"] > res["fd_train_subset_vs_test"] for r in res["rows"])  # 4 steps of training
    assert (run / "eval_samples" / "ddim3-eta1-raw.png").is_file() and (run / "classifier.pt").is_file()
    assert res["n_real_halves"] == res["n_floor"] == 12 and res["fd_real_halves"] > 0
    assert 0 < res["rows"][0]["mean_grey"] < 255
    if res["classifier_test_accuracy"] < 0.95:  # digits needs 95%: a 4-epoch classifier is warned about
        assert "warning: the digits feature classifier" in capsys.readouterr().err
    again = ev.evaluate(run / "checkpoints" / "last.pt", ["ddim:2", "ddim:3:1"], [True], 12, out, batch=8)
    assert again["rows"] == res["rows"]  # finished rows are kept, not recomputed
    results = tmp_path / "results"
    report.collect(run, results / "tiny")
    readme = tmp_path / "README.md"
    readme.write_text(
        "a\n<!-- report:ddpm-train -->\nSTALE\n<!-- /report:ddpm-train -->\n"
        "<!-- report:ddpm-eval-tiny -->\n<!-- /report:ddpm-eval-tiny -->\nb\n"
        "<!-- report:ddpm-eval-facts-tiny -->\n<!-- /report:ddpm-eval-facts-tiny -->\n"
        "<!-- report:ddpm-facts-tiny -->\n<!-- /report:ddpm-facts-tiny -->\n"
    )
    report.report(results, [readme])
    text = readme.read_text()
    assert "STALE" not in text and "| tiny | digits 8×8×1" in text and "DDIM η = 1 (DDPM-like" in text
    assert "not FID" in text and (results / "tiny" / "loss.png").is_file()
    assert json.loads((results / "tiny" / "eval.json").read_text())["step"] == 4
    assert report.stale_blocks(results, [readme]) == []
    readme.write_text(readme.read_text().replace("| tiny | digits", "| tiny | typed by hand"))
    assert report.stale_blocks(results, [readme]) == ["README.md:ddpm-train"]
    other = tmp_path / "other.md"
    other.write_text("no markers\n")
    with pytest.raises(ValueError, match="no markers"):  # a block with no place to go is an error
        report.report(results, [other], plots=False)


def test_classifier_command_writes_weights_accuracy_and_command(tmp_path, capsys):
    from paperlab.ddpm import classifier

    out = tmp_path / "digits-8.pt"
    info = classifier.main(["dataset=digits", "image_size=8", "--epochs", "2", "--augment", "1", "--out", str(out)])
    assert info is None  # main() returns nothing; the JSON beside the weights holds what was printed
    meta = json.loads(out.with_suffix(".json").read_text())
    assert meta["dataset"] == "digits" and 0.1 < meta["test_accuracy"] <= 1 and meta["required_accuracy"] == 0.95
    assert meta["command"].startswith("python -m paperlab.ddpm.classifier dataset=digits")
    if meta["test_accuracy"] < 0.95:
        assert "warning: the digits feature classifier" in capsys.readouterr().err
    net, acc = classifier.load_or_train_classifier(out, load_digits_data(8), epochs=0)
    assert acc == meta["test_accuracy"]
    with pytest.raises(ValueError, match="is a classifier for digits 8px, not digits 16px"):
        classifier.load_or_train_classifier(out, load_digits_data(16), epochs=0)


def test_noise_like_counts_noise_not_images():
    from paperlab.ddpm.sample import noise_like

    g = torch.Generator().manual_seed(0)
    smooth = torch.linspace(-1, 1, 16).view(1, 1, 1, 16).expand(5, 1, 16, 16)  # a ramp: smooth images
    noise = torch.rand(3, 1, 16, 16, generator=g) * 2 - 1
    assert noise_like(torch.cat([smooth, noise])) == 3 and noise_like(smooth) == 0


def test_rotation_task_labels_each_quarter_turn_and_trains_on_unlabelled_faces():
    """CelebA has no classes here: the feature network learns which way is up (self-supervised). An image
    with a bright top row must come back with its bright row where the label says it was turned to."""
    from paperlab.ddpm.data import ImageData

    x = torch.zeros(6, 3, 8, 8, dtype=torch.uint8)
    x[:, :, 0, :] = 255  # bright top row
    data = ImageData("celeba", x, None, x[:2], None, 0)
    rot = rotation_task(data)
    assert rot.num_classes == 4 and rot.train.shape == (24, 3, 8, 8) and len(rot.test_labels) == 8
    assert rot.train_labels.tolist() == [k for k in range(4) for _ in range(6)]
    where = [rot.train[rot.train_labels == k][0, 0] for k in range(4)]
    assert where[0][0].float().mean() == 255 and where[1][:, 0].float().mean() == 255  # 90 deg CCW: row 0 -> col 0
    assert where[2][-1].float().mean() == 255 and where[3][:, -1].float().mean() == 255
    gen = torch.Generator().manual_seed(0)
    faces = (torch.rand(64, 3, 16, 16, generator=gen) * 60).to(torch.uint8)
    faces[:, :, :4] = 230  # an "up" that the network can find
    net, acc = train_classifier(ImageData("celeba", faces[:48], None, faces[48:], None, 0), epochs=8, batch_size=32)
    assert net.task == "rotation" and net.head[-1].out_features == 4 and acc > 0.9
