"""One loader per method of the table: the same saved model, quantized by us or by a library.

Every method leaves the embeddings, the norms and the output head (``lm_head``) in floating point and
quantizes the ``nn.Linear`` layers of the blocks (q, k, v, o, gate, up, down), which is what
bitsandbytes does by default; so the weight bytes compare like for like. The ``-whole`` variants of ours
quantize the output head and the embedding table as well (int8 rows, row-wise absmax).
"""

from __future__ import annotations

import logging

import torch

from paperlab.quantization.config import METHODS
from paperlab.quantization.int8 import swap_linear, swap_whole_model
from paperlab.quantization.model import load_llama

HEAD = "lm_head"


def _block_linears(model) -> list[str]:
    return [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and n.split(".")[-1] != HEAD]


def load_method(method: str, model_dir: str, threshold: float = 6.0) -> torch.nn.Module:
    """``model_dir`` loaded and quantized by ``method`` (one of :data:`METHODS`), in eval mode."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")
    if method == "fp32":
        return load_llama(model_dir)
    if method == "bf16":
        return load_llama(model_dir, dtype=torch.bfloat16)
    if method in ("int8-weight-only", "int8-vectorwise", "llm-int8"):
        model = load_llama(model_dir)
        swap_linear(model, mode=method.removeprefix("int8-"), threshold=threshold, skip=(HEAD,))
        return model
    if method.endswith("-whole"):
        model = load_llama(model_dir)
        swap_whole_model(model, mode=method.removesuffix("-whole").removeprefix("int8-"), threshold=threshold)
        return model
    if method.startswith("bnb-"):
        from transformers import BitsAndBytesConfig

        logging.getLogger("bitsandbytes").setLevel(logging.ERROR)  # "inputs will be cast to float16", per call
        if method == "bnb-int8":
            qc = BitsAndBytesConfig(load_in_8bit=True, llm_int8_threshold=threshold)
        else:
            qc = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32)
        return load_llama(model_dir, quantization_config=qc)
    if method.startswith("torchao-"):
        logging.getLogger("torchao").setLevel(logging.ERROR)
        from torchao.quantization import Int8DynamicActivationInt8WeightConfig, Int8WeightOnlyConfig, quantize_

        model = load_llama(model_dir)
        config = (
            Int8WeightOnlyConfig() if method == "torchao-int8-weight-only" else Int8DynamicActivationInt8WeightConfig()
        )
        quantize_(model, config, filter_fn=lambda m, fqn: isinstance(m, torch.nn.Linear) and fqn != HEAD)
        return model
    # torch-ao-dynamic: fbgemm int8 weights, activations quantized per batch at run time (deprecated API)
    import warnings

    model = load_llama(model_dir)
    spec = {n: torch.ao.quantization.default_dynamic_qconfig for n in _block_linears(model)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, spec, dtype=torch.qint8)
