"""LoRA written here: low-rank updates of frozen Linear and Conv2d layers (Hu et al. 2021, Sec. 4.1).

A frozen weight W0 (d_out x d_in) gets an update of rank r:

    h = W0 x + (alpha / r) * B A x,     A: r x d_in,  B: d_out x r

A starts random (Kaiming-uniform, or Gaussian with std 1/r) and B starts at zero, so the adapted model
equals the base model at step 0 and only A, B train. For a k x k convolution A is a k x k conv from
d_in to r channels and B a 1 x 1 conv from r to d_out (peft's layout), so the update of the kernel is
``B @ A`` reshaped, again of rank <= r. Merging adds (alpha / r) B A into W0: the merged layer costs
exactly what the base layer costs at inference; unmerging subtracts it again.

    names = inject_lora(unet, ["to_q", "to_k", "to_v", "to_out.0"], rank=4, alpha=4)
    save_adapter(unet, "adapter.safetensors");  merge_lora(unet);  unmerge_lora(unet)
    load_adapter(fresh_base_unet, "adapter.safetensors")     # names the modules a wrong base lacks
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import torch
from torch import nn

ADAPTER_FORMAT = "paperlab-lora/1"


class LoRAError(ValueError):
    """A LoRA request that cannot be honoured: a bad rank, a pattern that matches nothing, a wrong base."""


class _LoRABase(nn.Module):
    base: nn.Module

    def _init_lora(self, rank: int, alpha: float, init: str, generator: torch.Generator | None) -> None:
        self.rank, self.alpha, self.scale = rank, float(alpha), float(alpha) / rank
        self.merged = False
        self.base.requires_grad_(False)
        with torch.no_grad():
            if init == "kaiming":  # peft's default (and nn.Linear's own init): uniform, bound sqrt(6/((1+5) fan_in))
                fan_in = self.lora_A.weight[0].numel()
                bound = math.sqrt(6.0 / ((1 + 5) * fan_in))
                self.lora_A.weight.uniform_(-bound, bound, generator=generator)
            elif init == "gaussian":
                self.lora_A.weight.normal_(0.0, 1.0 / rank, generator=generator)
            else:
                raise LoRAError(f"lora init must be kaiming or gaussian, got {init!r}")
            self.lora_B.weight.zero_()

    def delta_weight(self) -> torch.Tensor:
        """(alpha / r) B A in the shape of the base weight."""
        a, b = self.lora_A.weight, self.lora_B.weight
        delta = b.flatten(1) @ a.flatten(1)  # (d_out, r) @ (r, d_in * k * k)
        return (self.scale * delta).reshape(self.base.weight.shape)

    @torch.no_grad()
    def merge(self) -> None:
        if not self.merged:
            self.base.weight += self.delta_weight().to(self.base.weight.dtype)
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        if self.merged:
            self.base.weight -= self.delta_weight().to(self.base.weight.dtype)
            self.merged = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        if self.merged:
            return out
        return out + self.scale * self.lora_B(self.lora_A(x))


class LoRALinear(_LoRABase):
    """``base(x) + (alpha/r) B(A(x))`` around a frozen ``nn.Linear``."""

    def __init__(
        self,
        base: nn.Linear,
        rank: int,
        alpha: float,
        init: str = "kaiming",
        generator: torch.Generator | None = None,
        name: str = "Linear",
    ):
        super().__init__()
        width = min(base.in_features, base.out_features)
        _check_rank(rank, width, f"{name} (Linear {base.in_features}->{base.out_features})")
        self.base = base
        self.lora_A = nn.Linear(base.in_features, rank, bias=False, device=base.weight.device)
        self.lora_B = nn.Linear(rank, base.out_features, bias=False, device=base.weight.device)
        self._init_lora(rank, alpha, init, generator)


class LoRAConv2d(_LoRABase):
    """``base(x) + (alpha/r) B(A(x))`` around a frozen ``nn.Conv2d``: A has the base's kernel, stride and
    padding (d_in -> r channels), B is a 1x1 conv (r -> d_out)."""

    def __init__(
        self,
        base: nn.Conv2d,
        rank: int,
        alpha: float,
        init: str = "kaiming",
        generator: torch.Generator | None = None,
        name: str = "Conv2d",
    ):
        super().__init__()
        if base.groups != 1:
            raise LoRAError(f"{name}: grouped convolutions (groups={base.groups}) are not supported")
        kh, kw = base.kernel_size
        width = min(base.out_channels, base.in_channels * kh * kw)
        _check_rank(rank, width, f"{name} (Conv2d {base.in_channels}->{base.out_channels}, {kh}x{kw})")
        self.base = base
        dev = base.weight.device
        self.lora_A = nn.Conv2d(
            base.in_channels,
            rank,
            base.kernel_size,
            base.stride,
            base.padding,
            base.dilation,
            bias=False,
            padding_mode=base.padding_mode,
            device=dev,
        )
        self.lora_B = nn.Conv2d(rank, base.out_channels, 1, bias=False, device=dev)
        self._init_lora(rank, alpha, init, generator)


def _check_rank(rank: int, width: int, what: str) -> None:
    if not isinstance(rank, int) or rank <= 0:
        raise LoRAError(f"LoRA rank must be a positive integer, got {rank!r}")
    if rank > width:
        raise LoRAError(
            f"LoRA rank {rank} exceeds the width of {what}: at most {width} (a larger rank "
            "adds parameters but no expressiveness)"
        )


def pattern_matches(name: str, pattern: str) -> bool:
    """peft's rule: ``name`` equals ``pattern`` or ends with ``.pattern``; ``re:<regex>`` must fullmatch."""
    if pattern.startswith("re:"):
        return re.fullmatch(pattern[3:], name) is not None
    return name == pattern or name.endswith("." + pattern)


def find_targets(model: nn.Module, patterns: list[str]) -> list[str]:
    """Names of the Linear/Conv2d modules of ``model`` that match any of ``patterns``; none is an error."""
    names = [
        n
        for n, m in model.named_modules()
        if isinstance(m, nn.Linear | nn.Conv2d) and not _inside_lora(n) and any(pattern_matches(n, p) for p in patterns)
    ]
    if not names:
        layers = [n for n, m in model.named_modules() if isinstance(m, nn.Linear | nn.Conv2d)]
        raise LoRAError(
            f"target modules {patterns} match no Linear/Conv2d of {type(model).__name__} "
            f"(its layers include: {', '.join(layers[:8])}{' ...' if len(layers) > 8 else ''})"
        )
    return names


def _inside_lora(name: str) -> bool:
    return any(part in ("lora_A", "lora_B", "base") for part in name.split("."))


def _set_module(model: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, module)


def inject_lora(
    model: nn.Module,
    patterns: list[str],
    rank: int,
    alpha: float,
    init: str = "kaiming",
    generator: torch.Generator | None = None,
) -> list[str]:
    """Replace every matching Linear/Conv2d by its LoRA wrapper, freeze everything else; returns the names.

    All ranks are checked before anything is replaced, so a refused rank leaves ``model`` untouched.
    """
    if lora_modules(model):
        raise LoRAError(f"{type(model).__name__} already holds LoRA layers; start from the base model")
    names = find_targets(model, patterns)
    wrappers = {}
    for n in names:
        m = model.get_submodule(n)
        cls = LoRALinear if isinstance(m, nn.Linear) else LoRAConv2d
        wrappers[n] = (cls, m)
    # validate ranks first (constructing a wrapper checks its rank without touching the model)
    for n, (cls, m) in wrappers.items():
        width = (
            min(m.in_features, m.out_features)
            if cls is LoRALinear
            else min(m.out_channels, m.in_channels * m.kernel_size[0] * m.kernel_size[1])
        )
        _check_rank(rank, width, f"{n} ({type(m).__name__})")
    model.requires_grad_(False)
    for n, (cls, m) in wrappers.items():
        _set_module(model, n, cls(m, rank, alpha, init, generator, name=n))
    return names


def lora_modules(model: nn.Module) -> dict[str, _LoRABase]:
    return {n: m for n, m in model.named_modules() if isinstance(m, _LoRABase)}


def lora_parameters(model: nn.Module) -> list[nn.Parameter]:
    return [p for m in lora_modules(model).values() for p in (m.lora_A.weight, m.lora_B.weight)]


def merge_lora(model: nn.Module) -> None:
    for m in lora_modules(model).values():
        m.merge()


def unmerge_lora(model: nn.Module) -> None:
    for m in lora_modules(model).values():
        m.unmerge()


def remove_lora(model: nn.Module, merge: bool = True) -> None:
    """Put plain layers back (merged with their update when ``merge``): the result is a base-shaped model."""
    for n, m in lora_modules(model).items():
        if merge:
            m.merge()
        else:
            m.unmerge()
        _set_module(model, n, m.base)


def adapter_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """Only the adapter tensors: ``<module>.lora_A.weight`` and ``<module>.lora_B.weight``."""
    out = {}
    for n, m in lora_modules(model).items():
        out[f"{n}.lora_A.weight"] = m.lora_A.weight.detach().cpu().contiguous()
        out[f"{n}.lora_B.weight"] = m.lora_B.weight.detach().cpu().contiguous()
    return out


def save_adapter(model: nn.Module, path: str | Path, extra: dict | None = None) -> int:
    """Write the adapter tensors (safetensors) with rank, alpha and module names as metadata; returns bytes."""
    from safetensors.torch import save_file

    from paperlab.shared.checkpoint import atomic_path

    mods = lora_modules(model)
    if not mods:
        raise LoRAError(f"{type(model).__name__} holds no LoRA layers: nothing to save")
    first = next(iter(mods.values()))
    meta = {
        "format": ADAPTER_FORMAT,
        "rank": str(first.rank),
        "alpha": str(first.alpha),
        "modules": json.dumps(sorted(mods)),
        **{k: str(v) for k, v in (extra or {}).items()},
    }
    with atomic_path(path) as tmp:
        save_file(adapter_state_dict(model), str(tmp), metadata=meta)
    return Path(path).stat().st_size


def read_adapter(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no adapter file at {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types for a file that is not one
        raise LoRAError(f"{path} is not a safetensors file ({type(e).__name__}: {e})".split("\n")[0]) from e
    if meta.get("format") != ADAPTER_FORMAT:
        raise LoRAError(f"{path} is not a {ADAPTER_FORMAT} adapter (metadata format={meta.get('format')!r})")
    return tensors, meta


def load_adapter(model: nn.Module, path: str | Path) -> list[str]:
    """Inject LoRA into the modules named in the adapter file and load its tensors.

    A base model of another module set or shape is refused with the names of what does not fit.
    """
    tensors, meta = read_adapter(path)
    modules = json.loads(meta["modules"])
    rank, alpha = int(meta["rank"]), float(meta["alpha"])
    layers = {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear | nn.Conv2d)}
    missing = [n for n in modules if n not in layers]
    if missing:
        raise LoRAError(
            f"the adapter {path} was trained on another base: this {type(model).__name__} lacks "
            f"{len(missing)} of its {len(modules)} modules: {', '.join(missing[:6])}"
            f"{' ...' if len(missing) > 6 else ''}"
        )
    wrong = []
    for n in modules:
        w = layers[n].weight
        a, b = tensors[f"{n}.lora_A.weight"], tensors[f"{n}.lora_B.weight"]
        if a.shape[1] != w.shape[1] or b.shape[0] != w.shape[0] or a.shape[2:] != w.shape[2:]:
            wrong.append(f"{n} (adapter {tuple(b.shape[:1]) + tuple(a.shape[1:])}, model {tuple(w.shape)})")
    if wrong:
        raise LoRAError(
            f"the adapter {path} does not fit this {type(model).__name__}: shapes differ at "
            + ", ".join(wrong[:4])
            + (" ..." if len(wrong) > 4 else "")
        )
    inject_lora(model, [f"re:{re.escape(n)}" for n in modules], rank, alpha)
    with torch.no_grad():
        for n, m in lora_modules(model).items():
            m.lora_A.weight.copy_(tensors[f"{n}.lora_A.weight"])
            m.lora_B.weight.copy_(tensors[f"{n}.lora_B.weight"])
    return modules


# ----------------------------------------------------------------------------------------- peft
def inject_peft(model: nn.Module, patterns: list[str], rank: int, alpha: float, init: str = "kaiming") -> nn.Module:
    """The same adapter through peft: ``inject_adapter_in_model`` keeps the model's own class (UNet2DModel
    has no ``add_adapter``). Patterns of the form ``re:<regex>`` become one peft regex."""
    from peft import LoraConfig, inject_adapter_in_model

    regex = [p[3:] for p in patterns if p.startswith("re:")]
    plain = [p for p in patterns if not p.startswith("re:")]
    if regex and plain:
        raise LoRAError("mix either plain or re: patterns for peft, not both")
    find_targets(model, patterns)  # the same error as the hand-written path when nothing matches
    target = "|".join(f"(?:{r})" for r in regex) if regex else plain
    config = LoraConfig(
        r=rank,
        lora_alpha=alpha,
        target_modules=target,
        lora_dropout=0.0,
        init_lora_weights=True if init == "kaiming" else "gaussian",
    )
    model = inject_adapter_in_model(config, model)
    for n, p in model.named_parameters():
        p.requires_grad_("lora_" in n)
    return model


def copy_to_peft(ours: nn.Module, peft_model: nn.Module, adapter: str = "default") -> int:
    """Copy A and B of every hand-written LoRA layer into the peft layer of the same name; returns the count."""
    count = 0
    peft_layers = dict(peft_model.named_modules())
    with torch.no_grad():
        for n, m in lora_modules(ours).items():
            target = peft_layers[n]
            target.lora_A[adapter].weight.copy_(m.lora_A.weight)
            target.lora_B[adapter].weight.copy_(m.lora_B.weight)
            count += 1
    return count
