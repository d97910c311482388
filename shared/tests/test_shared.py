"""Tests of paperlab.shared: configs, run logging, seeding, GIFs and the torchvision repair."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from dataclasses import dataclass, field

import numpy as np
import pytest
from PIL import Image

from paperlab.shared.config import ConfigError, load_config, save_config
from paperlab.shared.gif import save_gif, to_uint8_rgb
from paperlab.shared.idx import read_idx, write_idx
from paperlab.shared.runlog import RunLogger, read_metrics
from paperlab.shared.seeding import seed_env, seed_everything


@dataclass
class Inner:
    width: int = 8


@dataclass
class Toy:
    lr: float = 1e-3
    steps: int = 10
    name: str = "a"
    flag: bool = False
    sizes: list[int] = field(default_factory=lambda: [1, 2])
    inner: Inner = field(default_factory=Inner)
    maybe: float | None = None

    def __post_init__(self):
        if self.steps <= 0:
            raise ValueError(f"steps must be positive, got {self.steps}")


# ------------------------------------------------------------------------------------------ config
def test_defaults_preset_and_overrides_merge_in_order(tmp_path):
    preset = tmp_path / "p.yaml"
    preset.write_text("lr: 0.5\nsteps: 20\ninner:\n  width: 3\n")
    cfg = load_config(Toy, preset, ["steps=7", "flag=true", "sizes=[4,5,6]", "maybe=2.5"])
    assert isinstance(cfg, Toy) and isinstance(cfg.inner, Inner)
    assert (cfg.lr, cfg.steps, cfg.flag, cfg.sizes, cfg.inner.width, cfg.maybe) == (0.5, 7, True, [4, 5, 6], 3, 2.5)
    assert load_config(Toy).steps == 10


def test_unknown_key_names_the_key_and_lists_valid_ones(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown config key 'lrr'.*valid keys.*lr"):
        load_config(Toy, None, ["lrr=1"])
    preset = tmp_path / "p.yaml"
    preset.write_text("stepz: 3\n")
    with pytest.raises(ConfigError, match=r"'stepz'.*p\.yaml"):
        load_config(Toy, preset)


def test_wrong_type_and_bad_values_are_refused():
    with pytest.raises(ConfigError, match="steps"):
        load_config(Toy, None, ["steps=ten"])
    with pytest.raises(ConfigError, match="flag"):
        load_config(Toy, None, ["flag=maybe"])
    with pytest.raises(ConfigError, match="steps must be positive"):
        load_config(Toy, None, ["steps=0"])
    with pytest.raises(ConfigError, match="key=value"):
        load_config(Toy, None, ["steps"])
    with pytest.raises(ConfigError, match="not found"):
        load_config(Toy, "no/such/preset.yaml")


def test_saved_config_loads_back_identically(tmp_path):
    cfg = load_config(Toy, None, ["lr=0.25", "maybe=1.0"])
    save_config(cfg, tmp_path / "c.yaml")
    assert load_config(Toy, tmp_path / "c.yaml") == cfg
    assert dataclasses.asdict(cfg)["inner"] == {"width": 8}


# ------------------------------------------------------------------------------------------ runlog
def test_runlog_writes_jsonl_tensorboard_and_truncates_on_resume(tmp_path):
    with RunLogger(tmp_path / "run", Toy()) as log:
        for step in (10, 20, 30):
            log.log(step, loss=1.0 / step, ret=step)
        log.log(40, loss=float("nan"))
    rows = read_metrics(tmp_path / "run" / "metrics.jsonl")
    assert [r["step"] for r in rows] == [10, 20, 30, 40]
    assert rows[1]["loss"] == pytest.approx(0.05) and rows[3]["loss"] is None
    assert (tmp_path / "run" / "config.yaml").exists()
    assert list((tmp_path / "run").glob("events.out.tfevents.*"))
    path = tmp_path / "run" / "metrics.jsonl"
    kept = [dict(r, time=100.0 + r["step"]) for r in read_metrics(path)[:2]]  # as if 2 min had passed
    path.write_text("".join(json.dumps(r) + "\n" for r in kept + read_metrics(path)[2:]))
    with RunLogger(tmp_path / "run", resume_step=20) as log:  # resumed from a checkpoint at step 20
        log.log(30, loss=0.5)
    rows = read_metrics(path)
    assert [r["step"] for r in rows] == [10, 20, 30]
    assert rows[2]["time"] >= 120.0  # wall time continues from the last kept row, it does not restart


# ----------------------------------------------------------------------------------------- seeding
def test_seed_everything_reproduces_numpy_torch_and_python():
    import random

    import torch

    def draw():
        seed_everything(123)
        return random.random(), np.random.rand(), torch.rand(1).item()

    assert draw() == draw()
    a = seed_everything(1).random(3)
    b = seed_everything(2).random(3)
    assert not np.allclose(a, b)


def test_seed_env_seeds_the_reset_and_the_action_sampler():
    class Space:
        def seed(self, s):
            self.seeded = s

    class Env:
        action_space = Space()

        def reset(self, seed=None):
            self.reset_seed = seed

    env = Env()
    seed_env(env, 5)
    assert env.reset_seed == 5 and env.action_space.seeded == 5


# --------------------------------------------------------------------------------------------- gif
def _moving_dot(n, h=6, w=7):
    frames = np.zeros((n, h, w, 3), dtype=np.uint8)
    for i in range(n):
        frames[i, i % h, (i * 3) % w] = 255
    return frames


def test_gif_frame_count_upscaling_fps_and_cap(tmp_path):
    frames = _moving_dot(12)
    n = save_gif(frames, tmp_path / "a.gif", fps=25, scale=4)
    im = Image.open(tmp_path / "a.gif")
    assert n == 12 and im.n_frames == 12
    assert im.size == (7 * 4, 6 * 4)
    assert im.info["duration"] == 40  # ms per frame at 25 fps
    save_gif(frames, tmp_path / "c.gif", fps=30)
    assert Image.open(tmp_path / "c.gif").info["duration"] == 30  # GIF delays are whole centiseconds
    im.seek(5)
    first = np.asarray(im.convert("RGB"))
    assert (first[::4, ::4] == frames[5]).all()  # nearest-neighbour upscaling, no blur
    assert save_gif(frames, tmp_path / "b.gif", max_frames=5) == 5
    assert Image.open(tmp_path / "b.gif").n_frames == 5


def test_gif_accepts_float_and_gray_frames_and_rejects_bad_input(tmp_path):
    assert to_uint8_rgb(np.ones((2, 2))).tolist() == [[[255] * 3] * 2] * 2
    assert to_uint8_rgb(np.full((1, 1, 3), 0.5))[0, 0, 0] == 128
    with pytest.raises(ValueError, match="shape"):
        save_gif([np.zeros((2, 2, 5))], tmp_path / "x.gif")
    with pytest.raises(ValueError, match="no frames"):
        save_gif([], tmp_path / "x.gif")
    with pytest.raises(ValueError, match="same shape"):
        save_gif([np.zeros((2, 2)), np.zeros((3, 3))], tmp_path / "x.gif")
    with pytest.raises(ValueError, match="scale"):
        save_gif([np.zeros((2, 2))], tmp_path / "x.gif", scale=0)


# ----------------------------------------------------------------------------- torchvision repair
def test_nms_reference_matches_a_direct_greedy_loop():
    import torch

    from paperlab.shared.torchvision_compat import nms_reference

    g = torch.Generator().manual_seed(0)
    xy = torch.rand(40, 2, generator=g) * 50
    boxes = torch.cat([xy, xy + 5 + torch.rand(40, 2, generator=g) * 20], 1)
    scores = torch.rand(40, generator=g)

    def iou(a, b):
        w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = w * h
        area = lambda r: (r[2] - r[0]) * (r[3] - r[1])
        return inter / (area(a) + area(b) - inter)

    keep = []
    for i in sorted(range(40), key=lambda i: -scores[i].item()):
        if all(iou(boxes[i].tolist(), boxes[k].tolist()) <= 0.3 for k in keep):
            keep.append(i)
    assert nms_reference(boxes, scores, 0.3).tolist() == keep


def test_torchvision_imports_in_a_fresh_interpreter():
    """The .pth hook must make torchvision importable whether or not its compiled ops load."""
    pytest.importorskip("torchvision")
    code = (
        "import torch, torchvision\n"
        "from torchvision.transforms import v2\n"
        "from torchvision.utils import make_grid\n"
        "import paperlab.shared.torchvision_compat as c\n"
        "assert make_grid(torch.rand(4, 3, 8, 8), nrow=2).shape == (3, 22, 22)\n"
        "b = torch.tensor([[0., 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30]])\n"
        "keep = torch.ops.torchvision.nms(b, torch.tensor([.9, .8, .7]), 0.5)\n"
        "print(keep.tolist(), c.patched)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    keep, patched = out.stdout.split("]")
    assert keep + "]" == "[0, 2]"
    # patched only where the compiled extension does not load
    probe = subprocess.run(
        [sys.executable, "-c", "import paperlab.shared.torchvision_compat as c;print(c.extension_loads())"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert patched.strip() == str(probe.stdout.strip() == "False")


@pytest.mark.parametrize("name", ["x-idx3-ubyte.gz", "x-idx3-ubyte"])
def test_idx_roundtrip_matches_the_mnist_header(tmp_path, name):
    x = np.random.default_rng(0).integers(0, 256, (5, 28, 28)).astype(np.uint8)
    write_idx(tmp_path / name, x)
    np.testing.assert_array_equal(read_idx(tmp_path / name), x)
    import gzip

    raw = (tmp_path / name).read_bytes()
    raw = gzip.decompress(raw) if name.endswith(".gz") else raw
    assert raw[:16] == bytes.fromhex("00000803000000050000001c0000001c")  # MNIST's images header
    labels = np.arange(7) % 10
    write_idx(tmp_path / "y.gz", labels)
    assert read_idx(tmp_path / "y.gz").tolist() == labels.tolist()


def test_idx_refuses_bad_magic_other_types_truncation_and_out_of_range(tmp_path):
    (tmp_path / "a").write_bytes(b"\x01\x02\x08\x01" + b"\x00" * 8)
    with pytest.raises(ValueError, match="bad magic"):
        read_idx(tmp_path / "a")
    (tmp_path / "b").write_bytes(b"\x00\x00\x0d\x01\x00\x00\x00\x01" + b"\x00" * 4)  # float32
    with pytest.raises(ValueError, match="not unsigned bytes"):
        read_idx(tmp_path / "b")
    write_idx(tmp_path / "c", np.zeros((4, 3), np.uint8))
    (tmp_path / "c").write_bytes((tmp_path / "c").read_bytes()[:-1])
    with pytest.raises(ValueError, match=r"shape \(4, 3\).*11 values"):
        read_idx(tmp_path / "c")
    with pytest.raises(ValueError, match="0-255"):
        write_idx(tmp_path / "d", np.array([0, 256]))
