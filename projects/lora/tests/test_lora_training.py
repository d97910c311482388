"""The training loop end to end on tiny offline runs: the loss falls, resume is exact, bad input is refused."""

from __future__ import annotations

import json
import os

import pytest
import torch

from paperlab.lora.checkpoint import ADAPTER, load_model
from paperlab.lora.config import Config
from paperlab.lora.data import DatasetError, load_mnist, load_olivetti, load_target
from paperlab.lora.evaluate import eps_loss
from paperlab.lora.model import load_base_unet
from paperlab.lora.train import main, train
from paperlab.shared.config import ConfigError

os.environ.setdefault("HF_HUB_OFFLINE", "1")
TINY = dict(
    image_size=8,
    block_out_channels=[8, 16],
    attn_levels=[False, True],
    norm_num_groups=4,
    attention_head_dim=8,
    num_samples=4,
    sample_steps=2,
    log_every=5,
)


def cfg_of(tmp_path, name: str, **kw) -> Config:
    return Config(**{**TINY, "run_dir": str(tmp_path / name), **kw})


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("base")
    cfg = cfg_of(tmp, "base", mode="base", total_steps=40, batch_size=32, lr=3e-3, checkpoint_every=40, ema_decay=0.0)
    train(cfg, log=lambda *_: None)
    return tmp / "base"


def lora_cfg(tmp_path, base_run, name="lora", **kw) -> Config:
    return cfg_of(
        tmp_path,
        name,
        **{
            "mode": "lora",
            "base_model": str(base_run),
            "total_steps": 20,
            "batch_size": 16,
            "lr": 5e-3,
            "checkpoint_every": 10,
            **kw,
        },
    )


def test_a_few_lora_steps_lower_the_diffusion_loss_on_the_target(tmp_path, base_run):
    cfg = lora_cfg(tmp_path, base_run, total_steps=60, modules="attn+conv+time", rank=4)
    target = load_target(cfg)
    before = eps_loss(load_base_unet(str(base_run)), cfg, target.train, target.train_labels)
    summary = train(cfg, log=lambda *_: None)
    unet, _ = load_model(cfg.run_dir)
    after = eps_loss(unet, cfg, target.train, target.train_labels)
    assert after < 0.9 * before, (before, after)
    assert summary["trainable_params"] < 0.25 * summary["total_params"]
    assert summary["saved_bytes"] == (tmp_path / "lora" / ADAPTER).stat().st_size
    # the base the adapter points to is untouched on disk
    base_again = load_base_unet(str(base_run))
    torch.testing.assert_close(eps_loss(base_again, cfg, target.train, target.train_labels), before, rtol=0, atol=0)


def test_resume_ends_where_an_uninterrupted_run_ends(tmp_path, base_run):
    from safetensors.torch import load_file

    straight = lora_cfg(tmp_path, base_run, "straight", total_steps=20)
    train(straight, log=lambda *_: None)
    first = lora_cfg(tmp_path, base_run, "split", total_steps=10)
    train(first, log=lambda *_: None)
    train(lora_cfg(tmp_path, base_run, "split", total_steps=20), resume=True, log=lambda *_: None)
    a = load_file(str(tmp_path / "straight" / ADAPTER))
    b = load_file(str(tmp_path / "split" / ADAPTER))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    rows = [json.loads(line) for line in (tmp_path / "split" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [5, 10, 15, 20]
    # a resumed run may not change its rank; a fresh run may not overwrite a history; a finished one says so
    with pytest.raises(ConfigError, match="rank: 4 in the checkpoint, 8 now"):
        train(lora_cfg(tmp_path, base_run, "split", total_steps=30, rank=8), resume=True)
    with pytest.raises(ConfigError, match="already holds a run"):
        train(lora_cfg(tmp_path, base_run, "split"))
    with pytest.raises(ConfigError, match="finished at step 20"):
        train(lora_cfg(tmp_path, base_run, "split", total_steps=20), resume=True)


def test_full_fine_tuning_and_the_peft_backend_run(tmp_path, base_run):
    full = train(lora_cfg(tmp_path, base_run, "full", mode="full", total_steps=5), log=lambda *_: None)
    assert full["trainable_params"] == full["total_params"]
    cfg = lora_cfg(tmp_path, base_run, "peft", lora_backend="peft", total_steps=5)
    peft_summary = train(cfg, log=lambda *_: None)
    ours = train(lora_cfg(tmp_path, base_run, "ours", total_steps=5), log=lambda *_: None)
    assert peft_summary["trainable_params"] == ours["trainable_params"]
    unet, _ = load_model(cfg.run_dir)  # the peft adapter file loads back into a peft-injected base
    assert any("lora_A" in n for n, _ in unet.named_parameters())


def test_bad_input_is_refused_with_one_clear_line(tmp_path, base_run, capsys):
    with pytest.raises(ValueError, match="rank must be a positive integer"):
        Config(rank=0)
    with pytest.raises(ValueError, match="give base_model="):
        Config(mode="lora")
    with pytest.raises(SystemExit) as e:
        main(["--config", "configs/lora/digits-lora.yaml", "rank=0"])
    assert e.value.code == 2 and "rank must be a positive integer" in capsys.readouterr().err
    with pytest.raises(Exception, match="exceeds the width"):  # attention here is 16 wide
        train(lora_cfg(tmp_path, base_run, "wide", rank=17))
    with pytest.raises(Exception, match="match no Linear/Conv2d"):
        train(lora_cfg(tmp_path, base_run, "nomatch", modules="to_nothing"))
    with pytest.raises(ConfigError, match="this run needs 16px"):
        train(lora_cfg(tmp_path, base_run, "size", image_size=16))
    with pytest.raises(DatasetError, match="train-images-idx3-ubyte.gz"):
        load_mnist(tmp_path, 28)
    with pytest.raises(DatasetError, match="olivettifaces.mat"):
        load_olivetti(tmp_path, 28, label=10)


def test_a_stable_diffusion_base_gives_one_clear_line_offline(tmp_path):
    with pytest.raises(FileNotFoundError, match="huggingface-cli download stable-diffusion-v1-5/stable-diffusion"):
        load_base_unet("stable-diffusion-v1-5/stable-diffusion-v1-5")
    (tmp_path / "sd" / "unet").mkdir(parents=True)
    (tmp_path / "sd" / "unet" / "config.json").write_text(json.dumps({"_class_name": "UNet2DConditionModel"}))
    with pytest.raises(ValueError, match="Stable Diffusion"):
        load_base_unet(str(tmp_path / "sd"))


def test_the_target_label_starts_at_the_mean_source_embedding(base_run):
    from diffusers import UNet2DModel

    raw = UNet2DModel.from_pretrained(base_run / "unet").class_embedding.weight
    loaded = load_base_unet(str(base_run)).class_embedding.weight
    assert torch.equal(loaded[:-1], raw[:-1])  # the source classes are untouched
    torch.testing.assert_close(loaded[-1], raw[:-1].mean(0))
    assert not torch.allclose(raw[-1], raw[:-1].mean(0))  # the base never trained it


def test_the_sampling_bench_times_unmerged_and_merged_and_their_images_agree(tmp_path, base_run):
    from paperlab.lora.bench import bench_run

    cfg = lora_cfg(tmp_path, base_run, "bench", total_steps=5, modules="attn+conv+time", rank=2)
    train(cfg, log=lambda *_: None)
    adapted = bench_run(cfg.run_dir, n=4, steps=2, repeats=1)
    base = bench_run(base_run, n=4, steps=2, repeats=1)
    assert adapted["lora_layers"] > 0 and adapted["ms_per_image"] > 0 and adapted["merged_ms_per_image"] > 0
    assert adapted["merged_vs_unmerged_max_abs"] < 1e-5
    assert base["lora_layers"] == 0 and "merged_ms_per_image" not in base
