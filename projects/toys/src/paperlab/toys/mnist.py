"""MNIST for tasks 10-12: the four IDX files (read by ``paperlab.shared.idx``), batches drawn inside
jitted loops, and a small CNN in plain JAX.

The data lives in ``data/mnist`` (the four standard ``*-idx?-ubyte.gz`` files); nothing is
downloaded. Tests use :func:`fake_mnist`, generated digit-like images, written to IDX files with
``write_idx`` so that the loader is tested end to end.

The CNN is written with plain ``jax.numpy`` (parameters are a list of ``{"w", "b"}`` dicts, easy to
``vmap`` over seeds and to hand to the optimisers of task 11). Its 3x3 convolution is nine shifted
slices of the padded input concatenated along channels and one matrix product (im2col): on one
CPU core this trains a 2-layer CNN of 8/16 channels at 18 ms per step of 128 images, where XLA's
``conv_general_dilated`` (flax ``nn.Conv``) took 265 ms (single-threaded XLA, one busy core).
"""

from __future__ import annotations

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from paperlab.shared.idx import read_idx, write_idx

FILES = {
    "train_x": "train-images-idx3-ubyte.gz",
    "train_y": "train-labels-idx1-ubyte.gz",
    "test_x": "t10k-images-idx3-ubyte.gz",
    "test_y": "t10k-labels-idx1-ubyte.gz",
}


def load_mnist(data_dir: str | Path) -> dict[str, np.ndarray]:
    """{"train_x": (60000, 28, 28) uint8, "train_y", "test_x", "test_y"} from the four IDX files."""
    data_dir = Path(data_dir)
    out = {}
    for key, name in FILES.items():
        path = data_dir / name
        if not path.is_file():
            raise FileNotFoundError(
                f"MNIST not found: {path} is missing (put the four IDX files {', '.join(FILES.values())} in "
                f"{data_dir}, or give mnist_dir=...; nothing is downloaded)"
            )
        out[key] = read_idx(path)
    for split in ("train", "test"):
        if len(out[f"{split}_x"]) != len(out[f"{split}_y"]):
            raise ValueError(f"{data_dir}: {split} images and labels differ in number")
    return out


def fake_mnist(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Generated "digits" for tests: class k is a fixed random stroke pattern, shifted by up to 2 pixels,
    with noise. Learnable to high accuracy by a small CNN in a few hundred steps."""
    rng = np.random.default_rng(1234)  # the class templates are the same for every seed
    templates = np.zeros((10, 28, 28))
    for k in range(10):
        for _ in range(3):  # three strokes per class
            r0, c0, r1, c1 = rng.integers(6, 22, 4)
            t = np.linspace(0, 1, 40)
            templates[k, np.round(r0 + t * (r1 - r0)).astype(int), np.round(c0 + t * (c1 - c0)).astype(int)] = 1.0
    templates = np.maximum(templates, 0.5 * (np.roll(templates, 1, 1) + np.roll(templates, 1, 2)))
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    shifts = rng.integers(-2, 3, (n, 2))
    x = np.stack([np.roll(templates[k], tuple(s), (0, 1)) for k, s in zip(y, shifts)])
    x = np.clip(x + 0.2 * rng.normal(size=x.shape), 0, 1)
    return (255 * x).astype(np.uint8), y.astype(np.uint8)


def write_fake_mnist(data_dir: str | Path, n_train: int = 2000, n_test: int = 500) -> Path:
    """A data/mnist-like folder of generated digits (for tests)."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    (tx, ty), (vx, vy) = fake_mnist(n_train, 0), fake_mnist(n_test, 1)
    for key, arr in (("train_x", tx), ("train_y", ty), ("test_x", vx), ("test_y", vy)):
        write_idx(data_dir / FILES[key], arr)
    return data_dir


def to_float(x_u8):
    """uint8 (..., 28, 28) -> float32 (..., 28, 28, 1) in [0, 1]."""
    return (jnp.asarray(x_u8, jnp.float32) / 255.0)[..., None]


def batch(key, x_u8, y, batch_size: int, n_avail=None):
    """A random minibatch (with replacement) from the first ``n_avail`` examples (default: all).

    ``n_avail`` may be a traced value: the data-size sweep of task 10 vmaps over it."""
    n = x_u8.shape[0] if n_avail is None else n_avail
    idx = jax.random.randint(key, (batch_size,), 0, n)
    return to_float(x_u8[idx]), y[idx].astype(jnp.int32)


# ----------------------------------------------------------------------------- the CNN


def conv3x3(x_BxHxWxC, w_9CxF, b_F):
    """3x3 'SAME' convolution: the nine shifted windows side by side (im2col) times the kernel matrix.

    ``w[(3 i + j) C + c, f]`` is the weight of input channel c at offset (i - 1, j - 1) for output f."""
    _, H, W, _ = x_BxHxWxC.shape
    xp = jnp.pad(x_BxHxWxC, ((0, 0), (1, 1), (1, 1), (0, 0)))
    cols = jnp.concatenate([xp[:, i : i + H, j : j + W, :] for i in range(3) for j in range(3)], -1)
    return cols @ w_9CxF + b_F


def max_pool2(x_BxHxWxC):
    B, H, W, C = x_BxHxWxC.shape
    return x_BxHxWxC.reshape(B, H // 2, 2, W // 2, 2, C).max((2, 4))


def cnn_init(key, features: tuple[int, ...], hidden: int = 0, n_classes: int = 10) -> list[dict]:
    """Conv 3x3 + ReLU per entry of ``features`` (a 2x2 max-pool after each of the first two), then an
    optional hidden dense ReLU layer, then the logits. He-normal weights, zero biases."""
    params, c, side = [], 1, 28
    keys = jax.random.split(key, len(features) + 2)
    for i, f in enumerate(features):
        params.append({"w": jax.random.normal(keys[i], (9 * c, f)) * jnp.sqrt(2.0 / (9 * c)), "b": jnp.zeros(f)})
        c = f
        side = side // 2 if i < 2 else side
    n_in = side * side * c
    for k, n_out in zip(keys[len(features) :], [hidden, n_classes] if hidden else [n_classes]):
        scale = jnp.sqrt((2.0 if n_out != n_classes else 1.0) / n_in)
        params.append({"w": jax.random.normal(k, (n_in, n_out)) * scale, "b": jnp.zeros(n_out)})
        n_in = n_out
    return params


def cnn_activations(params: list[dict], x_BxHxWx1, n_conv: int) -> list:
    """[conv_1, ..., conv_n (after ReLU, before pooling), (hidden), logits]."""
    acts, h = [], x_BxHxWx1
    for i in range(n_conv):
        h = jax.nn.relu(conv3x3(h, params[i]["w"], params[i]["b"]))
        acts.append(h)
        h = max_pool2(h) if i < 2 else h
    h = h.reshape(h.shape[0], -1)
    for j, layer in enumerate(params[n_conv:]):
        h = h @ layer["w"] + layer["b"]
        if j < len(params) - n_conv - 1:
            h = jax.nn.relu(h)
        acts.append(h)
    return acts


def cnn_apply(params: list[dict], x_BxHxWx1, n_conv: int):
    """Logits of the CNN."""
    return cnn_activations(params, x_BxHxWx1, n_conv)[-1]


def n_params(params) -> int:
    return int(sum(np.prod(p.shape) for p in jax.tree_util.tree_leaves(params)))


def cross_entropy(logits, labels):
    logp = jax.nn.log_softmax(logits)
    return -jnp.take_along_axis(logp, labels[:, None], 1)[:, 0].mean()


def evaluate_split(apply, params, x_u8, y, chunk: int = 1000) -> tuple[float, float]:
    """(mean cross-entropy, accuracy) of ``apply(params, x)`` over a whole split, in chunks."""
    f = jax.jit(
        lambda p, xb, yb: (
            cross_entropy(apply(p, to_float(xb)), yb) * len(yb),
            (apply(p, to_float(xb)).argmax(-1) == yb).sum(),
        )
    )
    loss = correct = 0.0
    for i in range(0, len(y), chunk):
        lo, co = f(params, x_u8[i : i + chunk], jnp.asarray(y[i : i + chunk], jnp.int32))
        loss, correct = loss + float(lo), correct + float(co)
    return loss / len(y), correct / len(y)
