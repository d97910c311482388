"""End to end on the generated offline set: training beats chance, evaluation certifies without being
contradicted by PGD, resume equals an uninterrupted run, bad input gives one clear error."""

import json

import pytest
import torch

from paperlab.lipschitz.checkpoint import load_model
from paperlab.lipschitz.config import Config
from paperlab.lipschitz.data import cifar10
from paperlab.lipschitz.evaluate import main as evaluate_main
from paperlab.lipschitz.train import train
from paperlab.shared.config import ConfigError

SMALL = dict(dataset="synthetic", widths=[4, 8], dense=16, batch_size=64, eval_images=200, log_every=5)


def test_short_run_beats_chance_and_evaluates(tmp_path):
    run = tmp_path / "run"
    cfg = Config(
        model="bjorck",
        epochs=2,
        run_dir=str(run),
        pgd_images=64,
        lower_bound_images=16,
        radii_255=[8, 36],
        pgd_steps=5,
        **SMALL,
    )
    summary = train(cfg)
    assert summary["finished"] and summary["test"]["test_acc"] > 0.5  # chance is 0.1
    evaluate_main([str(run)])
    ev = json.loads((run / "eval.json").read_text())
    assert ev["lipschitz_upper"] <= 1 + 1e-3
    assert ev["lipschitz_lower"] <= ev["lipschitz_upper"]
    assert ev["certified_points_flipped_by_pgd"] == 0
    for r in ("8", "36"):
        assert ev["certified_on_pgd_subset"][r] <= ev["pgd"][r] + 1e-9  # certified <= empirical
    assert ev["curve"]["certified"][0] == pytest.approx(ev["clean_acc"])


def test_resume_equals_uninterrupted(tmp_path):
    common = dict(model="spectral", epochs=2, train_subset=640, **SMALL)
    full = Config(run_dir=str(tmp_path / "full"), **common)
    train(full)
    part = Config(run_dir=str(tmp_path / "part"), **common)
    first = train(part, stop_after_steps=13)  # mid-epoch (10 steps per epoch)
    assert not first["finished"]
    with pytest.raises(ConfigError, match="already holds a run"):
        train(part)  # a fresh run over a checkpoint is refused
    assert train(part, resume=True)["finished"]
    a, _, _ = load_model(tmp_path / "full" / "model.pt")
    b, _, _ = load_model(tmp_path / "part" / "model.pt")
    for (name, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(p, q), name
    with pytest.raises(ConfigError, match="seed"):
        train(Config(run_dir=str(tmp_path / "part"), **{**common, "seed": 2}), resume=True)


def test_missing_cifar_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"cifar10-jpg\.tar\.gz"):
        cifar10(str(tmp_path), str(tmp_path / "cache"))
    (tmp_path / "cifar-10-batches-py").mkdir()
    with pytest.raises(FileNotFoundError, match="data_batch_1"):
        cifar10(str(tmp_path), str(tmp_path / "cache"))


def test_bad_config_refused():
    with pytest.raises(ValueError, match="radii_255"):
        Config(radii_255=[0, 36])
    with pytest.raises(ValueError, match="model"):
        Config(model="batchnorm-net")
    with pytest.raises(ValueError, match="data_dir"):
        Config(dataset="cifar10")
    with pytest.raises(ValueError, match="offset"):
        Config(loss="ce", offset=-0.1)


def test_report_labels_losses_and_reads_pilots(tmp_path):
    """The table's loss column and the pilot table come from each run's own config and metrics files."""
    from paperlab.lipschitz.report import loss_label, pilots
    from paperlab.shared.config import save_config, to_dict

    assert loss_label(to_dict(Config(loss="hkr", margin=0.5))) == "hKR (m 0.5)"
    assert loss_label(to_dict(Config(loss="ce", temperature=10.0))) == "CE (τ 10)"
    run = tmp_path / "pilot" / "ce-offset"
    run.mkdir(parents=True)
    save_config(Config(loss="ce", temperature=10.0, offset=0.2, epochs=2, eval_images=2000), run / "config.yaml")
    (run / "summary.json").write_text(json.dumps({"epochs_done": 2.0, "wall_time_s": 150.0, "finished": True}))
    lines = [{"step": 1, "loss": 1.0}, {"step": 2, "test_acc": 0.5, "test_cert36": 0.3, "epoch": 1.0}]
    lines.append({"step": 4, "test_acc": 0.55, "test_cert36": 0.35, "epoch": 2.0})
    (run / "metrics.jsonl").write_text("\n".join(json.dumps(d) for d in lines) + "\n")
    row = pilots(tmp_path).splitlines()[-1]
    assert row == "| ce-offset | bjorck | CE (τ 10, offset 0.2) | 2 | 50000 | 2000 | 55.0 | 35.0 | 150 |"


def test_report_long_seeds_lists_each_seed_then_mean_and_std(tmp_path):
    from paperlab.lipschitz.report import long_seeds

    assert long_seeds(tmp_path).startswith("No long run")
    for seed, acc, cert in ((1, 0.68, 0.47), (2, 0.66, 0.45), (10, 0.70, 0.49)):
        run = tmp_path / "cifar10" / f"bjorck-cert-seed{seed}"
        run.mkdir(parents=True)
        ev = {"clean_acc": acc, "certified": {"36": cert, "72": 0.3, "108": 0.1}, "pgd": {"36": 0.6}}
        ev |= {"epochs": 40.0, "epoch_time_s": 47.7, "certified_points_flipped_by_pgd": 0}
        (run / "eval.json").write_text(json.dumps(ev))
    lines = long_seeds(tmp_path).splitlines()
    assert [row.split(" | ")[0] for row in lines[2:5]] == ["| 1", "| 2", "| 10"]  # numeric seed order
    mean = "| mean ± std (3 seeds) | | | 68.0 ± 2.0 | 47.0 ± 2.0 | 30.0 ± 0.0 | 10.0 ± 0.0 | 60.0 ± 0.0 | |"
    assert lines[-1] == mean


def test_cifar_python_batches_are_read_cached_and_test_shuffled(tmp_path):
    import pickle

    import numpy as np

    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = sorted(rng.integers(0, 10, 20).tolist())  # class-sorted, as the JPEG folders are
        data = rng.integers(0, 256, (20, 3072), dtype=np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": labels}, f)
    train_set, test_set, mean = cifar10(str(tmp_path), str(tmp_path / "cache"))
    assert len(train_set) == 100 and len(test_set) == 20 and train_set.images.shape[1:] == (3, 32, 32)
    assert (tmp_path / "cache" / "cifar10-python.pt").is_file()
    assert test_set.labels.tolist() != sorted(test_set.labels.tolist())  # a uniform sample up front
    again = cifar10(str(tmp_path), str(tmp_path / "cache"))[1]  # from the cache, same order
    assert torch.equal(again.images, test_set.images)
