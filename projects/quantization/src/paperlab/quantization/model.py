"""The Llama model: built here from a ``LlamaConfig``, or loaded from any local ``LlamaForCausalLM`` directory.

``LlamaForCausalLM`` is transformers' implementation of the LLaMA architecture (Touvron et al. 2023):
pre-norm RMSNorm blocks, rotary position embeddings, a SwiGLU MLP, grouped-query attention and a KV
cache for decoding. Quantization (``int8.py``) replaces its ``nn.Linear`` layers.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from paperlab.quantization.config import Config


def llama_config(cfg: Config, tokenizer):
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=cfg.hidden_size,
        intermediate_size=cfg.intermediate_size,
        num_hidden_layers=cfg.num_layers,
        num_attention_heads=cfg.num_heads,
        num_key_value_heads=cfg.num_kv_heads,
        max_position_embeddings=cfg.context,
        rope_theta=cfg.rope_theta,
        hidden_act="silu",
        rms_norm_eps=1e-5,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def build_llama(cfg: Config, tokenizer) -> torch.nn.Module:
    from transformers import LlamaForCausalLM

    torch.manual_seed(cfg.seed)
    return LlamaForCausalLM(llama_config(cfg, tokenizer))


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def check_llama_dir(path: str | Path) -> Path:
    """The directory of a saved LlamaForCausalLM, or one line saying how to provide it (offline)."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(
            f"no model at {path} (no config.json): train one with `make train-quantization-base`, or download a "
            "LlamaForCausalLM (e.g. TinyLlama/TinyLlama-1.1B-Chat-v1.0) on a machine with internet "
            "(`huggingface-cli download <id> --local-dir DIR`) and pass model_path=DIR"
        )
    import json

    arch = json.loads((path / "config.json").read_text()).get("architectures") or []
    if "LlamaForCausalLM" not in arch:
        raise ValueError(f"{path} holds a {arch or 'model of unknown architecture'}, not a LlamaForCausalLM")
    return path


def load_llama(path: str | Path, dtype: torch.dtype = torch.float32, **kwargs) -> torch.nn.Module:
    """``LlamaForCausalLM.from_pretrained`` from a local directory only (never downloads), in eval mode."""
    from transformers import LlamaForCausalLM

    path = check_llama_dir(path)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    model = LlamaForCausalLM.from_pretrained(str(path), dtype=dtype, local_files_only=True, **kwargs)
    return model.eval()


def load_tokenizer(path: str | Path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(check_llama_dir(path)), local_files_only=True)
