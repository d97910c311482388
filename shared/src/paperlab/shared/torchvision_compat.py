"""Make ``import torchvision`` work when its compiled ops do not match the installed torch.

The registry's ``torchvision==0.28.0`` wheel is linked against the CUDA build of torch 2.13.0. With
the CPU build its extension fails to load, and ``torchvision/_meta_registrations.py`` then raises
``RuntimeError: operator torchvision::nms does not exist`` on import; ``transformers`` (and so
trl, peft, diffusers) imports torchvision and breaks with it.

The fix: right before torchvision is first imported, try to load its extension exactly as
torchvision would. If that fails, declare the ``torchvision::nms`` and ``torchvision::qnms``
operator schemas (the only ones torchvision registers unconditionally) with a pure-torch CPU
kernel. Where the extension loads, nothing is changed.

The hook is installed at start-up by ``paperlab_torchvision_compat.pth`` and costs one entry in
``sys.meta_path`` until torchvision is imported. What still does not work without the extension:
``torchvision.ops.*`` wrappers (they check for the compiled ops; call ``torch.ops.torchvision.nms``
directly), ``roi_align``/``roi_pool``/``deform_conv2d`` and ``torchvision.io.decode_image``.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from pathlib import Path

_libraries: list = []  # keeps the torch.library fragments alive
patched = False  # True once the schemas were declared here


def extension_loads() -> bool:
    """Whether torchvision's compiled ``_C`` extension loads into this torch (as torchvision tries it)."""
    import torch

    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        return True  # not installed: nothing to repair
    pkg_dir = Path(next(iter(spec.submodule_search_locations)))
    candidates = sorted(pkg_dir.glob("_C*.so")) + sorted(pkg_dir.glob("_C*.pyd"))
    if not candidates:
        return False
    try:
        torch.ops.load_library(str(candidates[0]))
        return True
    except (ImportError, OSError):
        return False


def nms_reference(dets, scores, iou_threshold: float):
    """Greedy non-maximum suppression in plain torch; boxes are (x1, y1, x2, y2)."""
    import torch

    if dets.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=dets.device)
    x1, y1, x2, y2 = dets.unbind(1)
    areas = (x2 - x1) * (y2 - y1)
    order = scores.argsort(descending=True, stable=True)
    xx1 = torch.maximum(x1[:, None], x1[None, :])
    yy1 = torch.maximum(y1[:, None], y1[None, :])
    xx2 = torch.minimum(x2[:, None], x2[None, :])
    yy2 = torch.minimum(y2[:, None], y2[None, :])
    inter = (xx2 - xx1).clamp(min=0) * (yy2 - yy1).clamp(min=0)
    iou = inter / (areas[:, None] + areas[None, :] - inter)
    suppressed = torch.zeros(dets.shape[0], dtype=torch.bool, device=dets.device)
    keep = []
    for i in order.tolist():
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= iou[i] > iou_threshold
    return torch.tensor(keep, dtype=torch.long, device=dets.device)


def patch() -> bool:
    """Declare the missing schemas if the extension does not load. Returns whether it patched."""
    global patched
    if patched or extension_loads():
        return False
    import torch

    lib = torch.library.Library("torchvision", "FRAGMENT")
    for name in ("nms", "qnms"):
        lib.define(f"{name}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        lib.impl(name, nms_reference, "CPU")
    _libraries.append(lib)
    patched = True
    return True


class _Finder(importlib.abc.MetaPathFinder):
    """Runs :func:`patch` once, just before ``torchvision`` itself is imported."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "torchvision":
            uninstall()
            try:
                patch()
            except Exception:  # never make an import fail because of the repair itself
                pass
        return None  # let the normal finders import it


_finder = _Finder()


def install() -> None:
    if "torchvision" not in sys.modules and _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)


def uninstall() -> None:
    if _finder in sys.meta_path:
        sys.meta_path.remove(_finder)
