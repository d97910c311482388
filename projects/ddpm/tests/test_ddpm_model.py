"""The U-Net, the EMA, configs and dataset errors."""

import numpy as np
import pytest
import torch
from torch import nn

from paperlab.ddpm.config import Config
from paperlab.ddpm.data import DatasetError, load_celeba, load_cifar10, load_digits_data, load_mnist, load_olivetti
from paperlab.ddpm.ema import EMA
from paperlab.ddpm.unet import UNet, timestep_embedding
from paperlab.shared.config import ConfigError, load_config

torch.set_num_threads(1)


def _random_init(model: nn.Module) -> nn.Module:
    """The zero-initialised output layers would make every output 0: give all weights random values."""
    torch.manual_seed(0)
    for p in model.parameters():
        nn.init.normal_(p, std=0.1)
    return model


@pytest.mark.parametrize("size,channels,mults,attn", [(16, 1, [1, 2], [8]), (12, 3, [1, 2, 2], [3]), (8, 1, [2], [])])
def test_unet_keeps_shape_and_uses_t(size, channels, mults, attn):
    model = _random_init(UNet(size, channels, 8, mults, 1, attn, groups=4)).eval()
    x = torch.randn(3, channels, size, size)
    out_early = model(x, torch.tensor([5, 5, 5]))
    out_late = model(x, torch.tensor([900, 900, 900]))
    assert out_early.shape == x.shape
    assert (out_early - out_late).abs().mean() > 1e-3 * out_early.abs().mean()
    # each sample only sees its own t
    mixed = model(x, torch.tensor([5, 900, 5]))
    assert torch.allclose(mixed[0], out_early[0], atol=1e-5) and torch.allclose(mixed[1], out_late[1], atol=1e-5)


def test_unet_has_attention_and_refuses_wrong_sizes():
    model = UNet(16, 1, 8, [1, 2], 1, [8], groups=4)
    assert any(type(m).__name__ == "AttnBlock" for m in model.modules())
    with pytest.raises(ValueError, match="takes 1x16x16 images, got 3x16x16"):
        model(torch.zeros(2, 3, 16, 16), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="takes 1x16x16 images, got 1x32x32"):
        model(torch.zeros(2, 1, 32, 32), torch.zeros(2, dtype=torch.long))
    with pytest.raises(ValueError, match="not divisible"):
        UNet(28, 1, 8, [1, 2, 2, 2])


def test_unet_output_starts_at_zero():
    """Zero-initialised output and residual branches: the untrained model predicts eps = 0 (loss E[eps^2] = 1)."""
    model = UNet(8, 1, 8, [1, 2], 1, [4], groups=4)
    assert model(torch.randn(2, 1, 8, 8), torch.tensor([1, 2])).abs().max() == 0


def test_timestep_embedding():
    e = timestep_embedding(torch.tensor([0, 1, 500]), 16)
    assert e.shape == (3, 16)
    assert torch.allclose(e[0, :8], torch.zeros(8)) and torch.allclose(e[0, 8:], torch.ones(8))
    assert not torch.allclose(e[1], e[2])


def test_ema_arithmetic():
    model = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, -2.0]]))
    ema = EMA(model, decay=0.9, warmup=False)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[3.0, 0.0]]))
    ema.update(model)  # 0.9 * [1, -2] + 0.1 * [3, 0]
    assert torch.allclose(ema.model.weight, torch.tensor([[1.2, -1.8]]))
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.0, 0.0]]))
    ema.update(model)
    assert torch.allclose(ema.model.weight, torch.tensor([[1.08, -1.62]]))
    assert not ema.model.weight.requires_grad
    warm = EMA(model, decay=0.9999, warmup=True)
    assert warm.current_decay() == pytest.approx(0.1)  # (1 + 0) / (10 + 0)
    for _ in range(100):
        warm.update(model)
    assert warm.current_decay() == pytest.approx(101 / 110)
    restored = EMA(model, 0.9999)
    restored.load_state_dict(warm.state_dict())
    assert restored.num_updates == 100 and torch.equal(restored.model.weight, warm.model.weight)


def test_config_errors():
    with pytest.raises(ConfigError, match="unknown config key 'learning_rate'"):
        load_config(Config, None, ["learning_rate=1"])
    with pytest.raises(ConfigError, match="needs data_dir"):
        load_config(Config, None, ["dataset=mnist"])
    with pytest.raises(ConfigError, match="dataset must be one of"):
        load_config(Config, None, ["dataset=imagenet"])
    with pytest.raises(ConfigError, match="not divisible"):
        load_config(Config, None, ["image_size=28", "channel_mults=[1,2,2,2]"])
    with pytest.raises(ConfigError, match="sample_steps"):
        load_config(Config, None, ["timesteps=10", "sample_steps=50"])
    cfg = load_config(Config, None, ["seed=3"])
    assert cfg.run_dir == "runs/ddpm/digits-seed3"


def test_dataset_errors_name_the_missing_files(tmp_path):
    with pytest.raises(DatasetError) as e:
        load_mnist(tmp_path, 28)
    for name in ("train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        assert name in str(e.value)
    with pytest.raises(DatasetError, match="olivettifaces.mat"):
        load_olivetti(tmp_path, 32)
    with pytest.raises(DatasetError, match="cifar10-jpg.tar.gz"):
        load_cifar10(tmp_path, 32)
    with pytest.raises(DatasetError, match="img_align_celeba"):
        load_celeba(tmp_path, 64)
    (tmp_path / "img_align_celeba").mkdir()
    with pytest.raises(DatasetError, match="no .jpg files"):
        load_celeba(tmp_path, 64)


def test_celeba_preprocessing_crops_148_and_resizes(tmp_path):
    from PIL import Image

    folder = tmp_path / "celeba" / "img_align_celeba"  # torchvision's layout
    folder.mkdir(parents=True)
    for i in range(3):
        a = np.zeros((218, 178, 3), dtype=np.uint8)  # CelebA's aligned size, H x W
        a[35:183, 15:163] = 200  # exactly the centre 148 x 148 crop is bright
        Image.fromarray(a).save(folder / f"{i + 1:06d}.jpg", quality=95)
    data = load_celeba(tmp_path, 16)
    assert data.train.shape[1:] == (3, 16, 16) and len(data.train) + len(data.test) == 3
    assert data.train.float().mean() > 180  # nothing of the dark border survives the crop
    (tmp_path / "celeba" / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg 0\n000009.jpg 2\n")
    with pytest.raises(DatasetError, match="000009.jpg"):
        load_celeba(tmp_path, 16)


def test_celeba_official_folder_and_the_64px_copy_give_the_same_faces(tmp_path):
    """The official 178x218 folder is cropped (left 15, top 35, 148x148) and bicubic-resized like the 64x64
    copy in data/celeba64; that copy loads from its folder and from its .tar.gz, resized to image_size."""
    import tarfile

    from PIL import Image

    official, small = tmp_path / "official" / "img_align_celeba", tmp_path / "small" / "celeba64"
    official.mkdir(parents=True)
    small.mkdir(parents=True)
    yy, xx = np.mgrid[0:218, 0:178]
    for i in range(10):
        a = np.stack([(xx * 1.4 + 25 * i) % 256, (yy * 1.2) % 256, (xx + yy + 9 * i) % 256], -1).astype(np.uint8)
        Image.fromarray(a).save(official / f"{i + 1:06d}.jpg", quality=95)
        with Image.open(official / f"{i + 1:06d}.jpg") as im:
            im.convert("RGB").crop((15, 35, 163, 183)).resize((64, 64), Image.BICUBIC).save(
                small / f"{i + 1:06d}.png.jpg", format="PNG"
            )  # lossless stand-in for the JPEG copy
    ref = load_celeba(tmp_path / "official", 64)
    copy = load_celeba(tmp_path / "small", 64)
    assert ref.train.shape == copy.train.shape == (9, 3, 64, 64) and copy.test.shape == (1, 3, 64, 64)
    assert torch.equal(ref.train, copy.train) and torch.equal(ref.test, copy.test)
    with tarfile.open(tmp_path / "celeba64-8k.tar.gz", "w:gz") as tar:
        tar.add(small, arcname="celeba64")
    (tmp_path / "only-tar").mkdir()
    (tmp_path / "celeba64-8k.tar.gz").rename(tmp_path / "only-tar" / "celeba64-8k.tar.gz")
    from_tar = load_celeba(tmp_path / "only-tar", 32)
    assert from_tar.train.shape == (9, 3, 32, 32) and from_tar.image_size == 32
    assert torch.equal(from_tar.train, load_celeba(tmp_path / "small", 32).train)


def test_digits_offline():
    data = load_digits_data(16)
    assert data.train.shape == (1500, 1, 16, 16) and data.train.dtype == torch.uint8
    assert data.test.shape[0] == 297 and data.train.max() > 200 and data.num_classes == 10


def test_paper_preset_builds_the_papers_cifar10_unet():
    """configs/ddpm/cifar10-paper.yaml reproduces the size of Ho et al.'s CIFAR-10 model (35.7M parameters)."""
    from pathlib import Path

    from paperlab.ddpm.unet import build_unet

    preset = Path(__file__).resolve().parents[3] / "configs" / "ddpm" / "cifar10-paper.yaml"
    model = build_unet(load_config(Config, preset), 3)
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 1) == 35.7


def test_cifar10_tarball_layout(tmp_path):
    """The JPEG tarball's layout train/<class>/NNNN.jpg, test/<class>/NNNN.jpg, labels in CIFAR-10 order."""
    import io
    import tarfile

    from PIL import Image

    with tarfile.open(tmp_path / "cifar10-jpg.tar.gz", "w:gz") as tf:
        for name, colour in (("train/cat/0000.jpg", 50), ("train/truck/0000.jpg", 200), ("test/airplane/0000.jpg", 90)):
            buf = io.BytesIO()
            Image.fromarray(np.full((32, 32, 3), colour, dtype=np.uint8)).save(buf, format="JPEG")
            info = tarfile.TarInfo(name)
            info.size = len(buf.getvalue())
            tf.addfile(info, io.BytesIO(buf.getvalue()))
    data = load_cifar10(tmp_path, 16)
    assert data.train.shape == (2, 3, 16, 16) and data.test.shape == (1, 3, 16, 16)
    assert sorted(data.train_labels.tolist()) == [3, 9] and data.test_labels.tolist() == [0]
