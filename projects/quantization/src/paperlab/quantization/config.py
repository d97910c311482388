"""The typed settings of a run: the Llama model and its pre-training, then quantization and benchmarking.

Presets live in ``configs/quantization/*.yaml``. The offline default trains a small ``LlamaForCausalLM``
on tiny-shakespeare; ``model_path=<dir>`` points every command after training at any local
``LlamaForCausalLM`` directory instead (e.g. TinyLlama downloaded on a user's machine).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

METHODS = (
    "fp32",  # the reference
    "bf16",  # weights and activations in bfloat16
    "int8-weight-only",  # written here: per-output-row absmax int8 weights, dequantised to fp32 for the matmul
    "int8-vectorwise",  # written here: LLM.int8 without the decomposition (threshold = infinity)
    "llm-int8",  # written here: vector-wise int8 + mixed-precision decomposition at `threshold`
    "int8-weight-only-whole",  # int8-weight-only on the whole model: the blocks, lm_head and the embedding table
    "llm-int8-whole",  # llm-int8 on the whole model: the blocks, lm_head (decomposed too) and the embedding table
    "bnb-int8",  # bitsandbytes Linear8bitLt through transformers' BitsAndBytesConfig(load_in_8bit=True)
    "bnb-nf4",  # bitsandbytes Linear4bit, NF4 (see the no_grad note in the README)
    "torchao-int8-weight-only",  # torchao Int8WeightOnlyConfig
    "torchao-int8-dynamic",  # torchao Int8DynamicActivationInt8WeightConfig
    "torch-ao-dynamic",  # torch.ao.quantization.quantize_dynamic (fbgemm int8, deprecated)
)


@dataclass
class Config:
    # --- experiment ---
    data_dir: str = "data/tinyshakespeare"  # folder with input.txt (Karpathy's tiny-shakespeare)
    seed: int = 1
    run_dir: str = "runs/quantization/shakespeare-seed${seed}"  # OmegaConf fills in the ${...}
    threads: int = 1  # torch CPU threads while training
    val_fraction: float = 0.1  # the last 10% of the characters are held out (nanoGPT's split)

    # --- tokenizer (byte-level BPE trained here on the training split) ---
    vocab_size: int = 2048

    # --- the Llama model (LlamaConfig: RMSNorm, RoPE, SwiGLU, grouped-query attention) ---
    hidden_size: int = 256
    intermediate_size: int = 704  # SwiGLU width, about 8/3 * hidden as in LLaMA (rounded to 64)
    num_layers: int = 6
    num_heads: int = 4
    num_kv_heads: int = 2  # GQA: each key/value head serves num_heads / num_kv_heads query heads
    context: int = 256  # training sequence length and max_position_embeddings
    rope_theta: float = 10000.0

    # --- pre-training ---
    total_steps: int = 360
    batch_size: int = 16
    lr: float = 2e-3
    min_lr: float = 1e-4  # cosine decay to this after warmup
    warmup_steps: int = 20
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    log_every: int = 10
    eval_every: int = 120  # steps between held-out losses (on eval_tokens tokens)
    eval_tokens: int = 16384
    checkpoint_every: int = 40
    autocast_bf16: bool = False  # forward under torch.autocast(bfloat16) (fp32 master weights, fp32 loss):
    #                              faster steps on a CPU with AVX512-BF16/AMX; the saved model is fp32

    # --- quantization and the benchmark (make quantize) ---
    model_path: str = ""  # a local LlamaForCausalLM directory; empty: <run_dir>/model (trained here)
    methods: list[str] = field(default_factory=lambda: list(METHODS))
    threshold: float = 6.0  # LLM.int8 outlier threshold on |x| (the paper's 6.0)
    ppl_tokens: int = 32768  # held-out tokens for perplexity and top-1 agreement
    ppl_window: int = 256  # non-overlapping windows of this many tokens
    prefill_len: int = 128  # prompt tokens for the prefill timing
    decode_tokens: int = 64  # new tokens for the decode timing (greedy, KV cache)
    repeats: int = 7  # timed repeats; the table shows the median
    bench_threads: int = 1  # torch threads in `make quantize`: on a shared machine 2 OpenMP threads spin-wait
    #                         whenever another process takes a core, which made single timings 10-40x slower
    keep_previous: bool = False  # add `methods` to the run's existing quantize.json (its fp32 reference kept)
    #                              instead of starting a new table; the note under the table says which rows
    sample_tokens: int = 60  # new tokens per generated sample
    prompts: list[str] = field(default_factory=lambda: ["ROMEO:\n", "First Citizen:\nWe are", "KING HENRY:\nWhat"])

    def __post_init__(self):
        # load_config resolves ${...} through OmegaConf; this covers Config(...) built in Python
        self.run_dir = re.sub(r"\$\{(\w+)\}", lambda m: str(getattr(self, m.group(1))), self.run_dir)
        positive = (
            "vocab_size",
            "hidden_size",
            "intermediate_size",
            "num_layers",
            "num_heads",
            "num_kv_heads",
            "context",
            "total_steps",
            "batch_size",
            "log_every",
            "checkpoint_every",
            "threads",
            "eval_tokens",
            "ppl_tokens",
            "ppl_window",
            "prefill_len",
            "decode_tokens",
            "repeats",
        )
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.threshold <= 0:
            raise ValueError(f"threshold must be > 0 (|x| >= threshold marks an outlier column), got {self.threshold}")
        if self.hidden_size % self.num_heads:
            raise ValueError(f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(f"num_heads {self.num_heads} is not a multiple of num_kv_heads {self.num_kv_heads}")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise ValueError(f"unknown method(s) {unknown}; valid: {', '.join(METHODS)}")
        if self.vocab_size < 260:
            raise ValueError(f"vocab_size must be >= 260 (256 bytes + special tokens), got {self.vocab_size}")
