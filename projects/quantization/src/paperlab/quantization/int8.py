"""LLM.int8() written here (Dettmers et al. 2022, arXiv 2208.07339): absmax / zero-point quantization,
vector-wise int8 matmul with outer-product dequantization, the mixed-precision decomposition, and an
``nn.Linear`` replacement that can be swapped into any Hugging Face model.

Shapes follow ``nn.Linear``: activations ``X`` are (tokens T, in K), weights ``W`` are (out N, in K), Y = X W^T.

    absmax:      s = 127 / max|x|,               q = round(s x),                 x ~ q / s
    zero-point:  nd = 255 / (max x - min x),     z = round(-min x * nd) - 128,   q = clamp(round(nd x) + z)
                                                                                  x ~ (q - z) / nd
    vector-wise: c_x[t] = max_k |X[t,k]|,  c_w[n] = max_k |W[n,k]|  (one scale per row of X, per row of W)
                 Y[t,n] ~ (Xq Wq^T)[t,n] * c_x[t] * c_w[n] / 127^2   (int32 accumulate, outer-product dequant)
    LLM.int8:    O = {k : max_t |X[t,k]| >= threshold};  Y = X[:,O] W'[:,O]^T  +  vector-wise(X[:,~O], W[:,~O])
                 (W' = the int8 weight dequantized: only int8 weights are stored, as in bitsandbytes)
"""

from __future__ import annotations

import torch
from torch import nn

Q = 127.0  # the int8 grid used by symmetric (absmax) quantization: [-127, 127]
MODES = ("weight-only", "vectorwise", "llm-int8")


# ----------------------------------------------------------------------------------- number formats
def absmax_quantize(x: torch.Tensor, dim: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8: ``q = round(x * 127 / max|x|)`` over the whole tensor (``dim=None``) or along ``dim``.

    Returns ``(q int8, scale)`` with ``x ~ q / scale``; the error is at most ``max|x| / 254`` per element.
    """
    amax = x.abs().amax() if dim is None else x.abs().amax(dim=dim, keepdim=True)
    scale = Q / amax.float().clamp(min=1e-12)
    return torch.round(x.float() * scale).clamp(-Q, Q).to(torch.int8), scale


def absmax_dequantize(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return q.float() / scale


def zeropoint_quantize(x: torch.Tensor, dim: int | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Asymmetric int8: the range [min x, max x] is stretched onto all 256 codes [-128, 127].

    Returns ``(q int8, nd, zp)`` with ``x ~ (q - zp) / nd``; the error is at most ``(max x - min x) / 510``.
    Uses the full grid for one-signed data (e.g. after ReLU), where absmax wastes half of it.
    """
    xmin = x.amin() if dim is None else x.amin(dim=dim, keepdim=True)
    xmax = x.amax() if dim is None else x.amax(dim=dim, keepdim=True)
    nd = 255.0 / (xmax - xmin).float().clamp(min=1e-12)
    zp = torch.round(-xmin.float() * nd) - 128.0
    q = (torch.round(x.float() * nd) + zp).clamp(-128, 127).to(torch.int8)
    return q, nd, zp


def zeropoint_dequantize(q: torch.Tensor, nd: torch.Tensor, zp: torch.Tensor) -> torch.Tensor:
    return (q.float() - zp) / nd


# ----------------------------------------------------------------------------------- int8 matmul
def int8_matmul(a: torch.Tensor, b_t: torch.Tensor) -> torch.Tensor:
    """int8 (M, K) x int8 (K, N) -> int32 (M, N) with ``torch._int_mm``.

    On CPU ``_int_mm`` takes any shapes (on CUDA it needs M > 16 and K, N multiples of 8); the sum of K
    products of two int8 values fits in int32 for K < 2^31 / 127^2 ~ 133k.
    """
    if a.dtype != torch.int8 or b_t.dtype != torch.int8:
        raise TypeError(f"int8_matmul needs int8 inputs, got {a.dtype} and {b_t.dtype}")
    if a.shape[1] == 1:  # torch 2.13 CPU _int_mm is wrong for K = 1 with a transposed B (strides (1, 1))
        return a.int() @ b_t.int()
    if a.device.type == "cpu":
        return torch._int_mm(a, b_t)
    m, k = a.shape  # CUDA: pad to the kernel's constraints, then cut the result back
    n = b_t.shape[1]
    pm, pk, pn = max(17, m) - m, (-k) % 8, (-n) % 8
    a = nn.functional.pad(a, (0, pk, 0, pm)) if pm or pk else a
    b_t = nn.functional.pad(b_t, (0, pn, 0, pk)) if pn or pk else b_t
    return torch._int_mm(a, b_t)[:m, :n]


def vectorwise_matmul(x: torch.Tensor, w_int8: torch.Tensor, w_scale: torch.Tensor) -> torch.Tensor:
    """Y = X W^T by vector-wise int8: X row-wise absmax, W (already int8, per output row) column-wise in
    W^T, int32 accumulation, then the outer-product dequantization ``C * c_x c_w^T / 127^2``.

    ``w_int8`` (N, K) int8 and ``w_scale`` (N,) = max_k |W[n, k]| (the row's absmax, not its inverse).
    """
    c_x = x.abs().amax(dim=1, keepdim=True).float().clamp(min=1e-12)  # (T, 1)
    x_int8 = torch.round(x.float() * (Q / c_x)).to(torch.int8)
    c = int8_matmul(x_int8, w_int8.t())  # (T, N) int32
    return c.float() * (c_x * w_scale.float()[None, :] / (Q * Q))


def quantize_weight(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-output-row absmax int8 of a (N, K) weight: ``(w_int8, row_absmax)``; W ~ w_int8 * row_absmax / 127."""
    amax = w.abs().amax(dim=1).float().clamp(min=1e-12)
    return torch.round(w.float() * (Q / amax[:, None])).to(torch.int8), amax


def outlier_columns(x: torch.Tensor, threshold: float) -> torch.Tensor:
    """Boolean (K,) mask of the feature dimensions with any |X[t, k]| >= threshold."""
    return x.abs().amax(dim=0) >= threshold


def llm_int8_matmul(
    x: torch.Tensor, w_int8: torch.Tensor, w_scale: torch.Tensor, threshold: float
) -> tuple[torch.Tensor, int]:
    """The mixed-precision decomposition: outlier feature columns of X in floating point, the rest in int8.

    Returns ``(Y, number of outlier columns)``. The outlier part multiplies the unquantized activations
    by the dequantized int8 weight columns (only int8 weights are kept in memory, as in bitsandbytes).
    """
    mask = outlier_columns(x, threshold)
    n_out = int(mask.sum())
    if n_out == 0:
        return vectorwise_matmul(x, w_int8, w_scale), 0
    keep = ~mask
    w_out = w_int8[:, mask].float() * (w_scale[:, None] / Q)  # (N, |O|)
    y = x[:, mask].float() @ w_out.t()
    if keep.any():
        y = y + vectorwise_matmul(x[:, keep], w_int8[:, keep], w_scale)
    return y, n_out


# ----------------------------------------------------------------------------------- the module
class Int8Linear(nn.Module):
    """A drop-in ``nn.Linear`` with int8 weights (1 byte each) and one fp32 absmax per output row.

    ``mode``: ``weight-only`` (dequantize the weight, fp32 matmul), ``vectorwise`` (int8 x int8 -> int32,
    no decomposition) or ``llm-int8`` (vector-wise + outlier columns |x| >= ``threshold`` in fp32).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool, mode: str = "llm-int8", threshold: float = 6.0):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
        if not threshold > 0:
            raise ValueError(f"threshold must be > 0 (|x| >= threshold marks an outlier column), got {threshold}")
        self.in_features, self.out_features, self.mode, self.threshold = in_features, out_features, mode, threshold
        self.register_buffer("weight_int8", torch.zeros(out_features, in_features, dtype=torch.int8))
        self.register_buffer("weight_absmax", torch.ones(out_features))
        self.register_buffer("bias", torch.zeros(out_features) if bias else None)
        self.outlier_columns_seen = 0  # outlier columns in the last forward (llm-int8), for statistics

    @classmethod
    def from_linear(cls, linear: nn.Linear, mode: str = "llm-int8", threshold: float = 6.0) -> Int8Linear:
        m = cls(linear.in_features, linear.out_features, linear.bias is not None, mode, threshold)
        w_int8, amax = quantize_weight(linear.weight.detach())
        # stored (N, K) as the transpose of a contiguous (K, N): _int_mm reads W^T ~3x faster on CPU that way
        m.weight_int8 = w_int8.t().contiguous().t()
        m.weight_absmax.copy_(amax)
        if linear.bias is not None:
            m.bias.copy_(linear.bias.detach().float())
        return m

    def dequantized_weight(self) -> torch.Tensor:
        return self.weight_int8.float() * (self.weight_absmax[:, None] / Q)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape, dtype = x.shape, x.dtype
        x2 = x.reshape(-1, self.in_features)
        if self.mode == "weight-only":
            y = (x2.float() @ self.weight_int8.t().float()) * (self.weight_absmax / Q)
        elif self.mode == "vectorwise" or x2.shape[0] == 0:
            y = vectorwise_matmul(x2, self.weight_int8, self.weight_absmax)
        else:
            y, self.outlier_columns_seen = llm_int8_matmul(x2, self.weight_int8, self.weight_absmax, self.threshold)
        if self.bias is not None:
            y = y + self.bias
        return y.to(dtype).reshape(*shape[:-1], self.out_features)

    def extra_repr(self) -> str:
        t = f", threshold={self.threshold}" if self.mode == "llm-int8" else ""
        return f"in_features={self.in_features}, out_features={self.out_features}, mode={self.mode}{t}"


class Int8Embedding(nn.Module):
    """A drop-in ``nn.Embedding`` with int8 rows (1 byte each) and one fp32 absmax per row (per token).

    A lookup has no matmul, so this is weight-only by nature: the gathered rows are dequantized to fp32,
    ``E[i] ~ weight_int8[i] * weight_absmax[i] / 127``; the error is at most ``max_k |E[i, k]| / 254``.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None):
        super().__init__()
        self.num_embeddings, self.embedding_dim, self.padding_idx = num_embeddings, embedding_dim, padding_idx
        self.register_buffer("weight_int8", torch.zeros(num_embeddings, embedding_dim, dtype=torch.int8))
        self.register_buffer("weight_absmax", torch.ones(num_embeddings))

    @classmethod
    def from_embedding(cls, emb: nn.Embedding) -> Int8Embedding:
        m = cls(emb.num_embeddings, emb.embedding_dim, emb.padding_idx)
        m.weight_int8, m.weight_absmax = quantize_weight(emb.weight.detach())  # row-wise absmax
        return m

    @classmethod
    def sharing(cls, head: Int8Linear, padding_idx: int | None = None) -> Int8Embedding:
        """An embedding that reads the int8 rows of a tied output head (one copy in memory, as in fp32):
        the head's per-output-row absmax is the embedding's per-token absmax."""
        m = cls(head.out_features, head.in_features, padding_idx)
        m.weight_int8, m.weight_absmax = head.weight_int8, head.weight_absmax  # the same tensors, not copies
        return m

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        rows = nn.functional.embedding(ids, self.weight_int8).float()
        return rows * (self.weight_absmax[ids] / Q).unsqueeze(-1)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}, int8 rows"


# ----------------------------------------------------------------------------------- the swap
QUANTIZED_TYPES = (
    "Int8Linear",
    "Int8Embedding",
    "Linear8bitLt",
    "Linear4bit",
    "Int8Params",
    "Params4bit",
    "AffineQuantizedTensor",
    "LinearActivationQuantizedTensor",
    "Int8Tensor",
    "IntxUnpackedTensor",
)
# modules that hold parameters and are fine to leave in floating point (the paper keeps them in 16 bit too)
FLOAT_OK = ("Embedding", "RMSNorm", "LayerNorm", "RotaryEmbedding")


def check_not_quantized(model: nn.Module) -> None:
    """Refuse a model that already holds quantized layers or weights (int8 of int8 is not a thing to do)."""
    for name, module in model.named_modules():
        kinds = [type(module).__name__] + [type(p).__name__ for p in module.parameters(recurse=False)]
        kinds += [type(b).__name__ for b in module.buffers(recurse=False)]
        hit = [k for k in kinds if k in QUANTIZED_TYPES] or (
            ["torch.ao quantized"] if "quantized" in type(module).__module__ else []
        )
        if hit:
            raise ValueError(
                f"module {name or '<root>'} is already quantized ({hit[0]}); load the floating-point "
                "model to quantize it"
            )


def swap_linear(
    model: nn.Module,
    mode: str = "llm-int8",
    threshold: float = 6.0,
    skip: tuple[str, ...] = ("lm_head",),
    embeddings: bool = False,
) -> list[str]:
    """Replace every ``nn.Linear`` of ``model`` (in place) by :class:`Int8Linear`, except modules named in
    ``skip`` (by default the output head stays in floating point, as in bitsandbytes). With ``embeddings``
    every ``nn.Embedding`` becomes an :class:`Int8Embedding` too (row-wise absmax); pass ``skip=()`` as well
    to quantize the whole model (:func:`swap_whole_model`). An embedding tied to a swapped head shares its
    int8 rows. Returns the swapped names.

    Refused with a message naming the module: a model already quantized, and a module that holds
    weights but is neither ``nn.Linear`` nor one of the layers kept in floating point (e.g. GPT-2's
    ``Conv1D``, which would otherwise stay unquantized without a word).
    """
    if not threshold > 0:
        raise ValueError(f"threshold must be > 0 (|x| >= threshold marks an outlier column), got {threshold}")
    check_not_quantized(model)
    for name, module in model.named_modules():
        if (
            any(True for _ in module.parameters(recurse=False))
            and not isinstance(module, nn.Linear)
            and not any(k in type(module).__name__ for k in FLOAT_OK)
        ):
            raise ValueError(
                f"cannot quantize module {name} ({type(module).__name__}): only nn.Linear layers are "
                "swapped for Int8Linear, and this layer type is not supported"
            )
    targets = [
        (n, m)
        for n, m in model.named_modules()
        if isinstance(m, nn.Linear) and n.split(".")[-1] not in skip and n not in skip
    ]
    by_weight = {}  # id of a swapped Linear's fp weight -> its Int8Linear (to find tied embeddings)
    for name, linear in targets:
        by_weight[id(linear.weight)] = _replace(model, name, Int8Linear.from_linear(linear, mode, threshold))
    swapped = [n for n, _ in targets]
    if embeddings:
        for name, emb in [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Embedding)]:
            head = by_weight.get(id(emb.weight))
            new = Int8Embedding.sharing(head, emb.padding_idx) if head else Int8Embedding.from_embedding(emb)
            _replace(model, name, new)
            swapped.append(name)
    return swapped


def swap_whole_model(model: nn.Module, mode: str = "llm-int8", threshold: float = 6.0) -> list[str]:
    """Int8 everywhere a weight matrix is: the blocks' Linears, the output head and the embedding table."""
    return swap_linear(model, mode, threshold, skip=(), embeddings=True)


def _replace(model: nn.Module, name: str, new: nn.Module) -> nn.Module:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, new)
    return new


# ----------------------------------------------------------------------------------- memory accounting
def tensor_bytes(t: torch.Tensor) -> int:
    """Bytes a tensor really holds: tensor subclasses (torchao) are counted through their inner tensors,
    bitsandbytes parameters with their scales, quantized torch tensors at 1 byte per element."""
    if hasattr(t, "__tensor_flatten__"):
        names, _ = t.__tensor_flatten__()
        return sum(tensor_bytes(getattr(t, n)) for n in names if isinstance(getattr(t, n), torch.Tensor))
    n = t.numel() * t.element_size()
    for attr in ("SCB",):  # bitsandbytes Int8Params: per-row scales beside the int8 data
        extra = getattr(t, attr, None)
        if isinstance(extra, torch.Tensor):
            n += extra.numel() * extra.element_size()
    qs = getattr(t, "quant_state", None)  # bitsandbytes Params4bit: absmax (and nested) statistics
    if qs is not None:
        for v in vars(qs).values():
            if isinstance(v, torch.Tensor):
                n += v.numel() * v.element_size()
            elif hasattr(v, "absmax"):
                n += sum(x.numel() * x.element_size() for x in vars(v).values() if isinstance(x, torch.Tensor))
    if t.is_quantized:
        n = t.numel() + 8 * (
            t.q_per_channel_scales().numel()
            if t.qscheme() in (torch.per_channel_affine, torch.per_channel_symmetric)
            else 1
        )
    return n


def weight_bytes(model: nn.Module) -> int:
    """Bytes of every parameter and buffer of ``model`` (each shared tensor once), int8 at 1 byte each;
    torch.ao dynamically quantized Linear layers are counted from their packed int8 weights."""
    seen, alive, total = set(), [], 0  # `alive` keeps unpacked torch.ao weights from recycling their id()
    for module in model.modules():
        tensors = list(module.parameters(recurse=False)) + [b for b in module.buffers(recurse=False) if b is not None]
        if "quantized" in type(module).__module__ and hasattr(module, "weight") and callable(module.weight):
            tensors += [module.weight()] + ([module.bias()] if module.bias() is not None else [])
        alive += tensors
        for t in tensors:
            if id(t) not in seen:
                seen.add(id(t))
                total += tensor_bytes(t)
    return total
