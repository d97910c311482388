"""One typed schema for the three PyTorch toy tasks. Presets live in ``configs/toys_torch/<task>.yaml``.

A preset names its ``task`` and sets fields of that task's section; the other sections keep their
defaults. Overrides use dotted keys: ``python -m paperlab.toys_torch.beam_search
beam_search.widths=[1,5] seed=1``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

TASKS = ("beam_search", "sonnet_sft", "red_team")
EARLY_STOPPING = ("true", "false", "never")


@dataclass
class LMShape:
    """A small causal LM trained here: its BPE tokenizer and transformer size, and its pre-training."""

    vocab_size: int = 2048  # byte-level BPE trained on the training text
    d_model: int = 128
    n_layers: int = 4
    n_heads: int = 4
    n_kv_heads: int = 2  # grouped-query attention (Llama only): n_heads / n_kv_heads queries share a K/V head
    ffn: int = 352  # SwiGLU hidden width (Llama) / MLP width (GPT-2)
    context: int = 128  # tokens per training window (and the model's maximum length)
    train_steps: int = 1500
    batch_size: int = 32
    lr: float = 3e-3  # AdamW, linear warm-up then cosine decay to 10%
    weight_decay: float = 0.1
    val_frac: float = 0.1  # the last 10% of the text is the validation split
    log_every: int = 50
    checkpoint_every: int = 250


@dataclass
class BeamSearchConfig:
    """Task 8: beam search on a small LM; n-best lists, score and diversity against width, time per token."""

    # a saved HF causal LM + tokenizer (save_pretrained); "" = task 7's base model in
    # runs/toys_torch/sonnet_sft/seed<seed>/base if it is there, else a small LM trained on the plays here
    model_dir: str = ""
    plays_path: str = "data/tinyshakespeare/input.txt"
    lm: LMShape = field(default_factory=lambda: LMShape(train_steps=600))
    contexts: list[str] = field(
        default_factory=lambda: [
            "ROMEO:\n",
            "JULIET:\nO Romeo,",
            "KING RICHARD III:\nNow is the",
            "First Citizen:\nWe are",
            "HAMLET:\nTo be, or not to be",
            "DUKE VINCENTIO:\nWhat",
            "LADY MACBETH:\n",
            "MENENIUS:\nI tell you,",
        ]
    )
    widths: list[int] = field(default_factory=lambda: [1, 2, 5, 10, 20])
    shown_width: int = 10  # the width whose n-best lists are written out in full
    max_new_tokens: int = 32
    length_penalty: float = 1.0
    early_stopping: str = "false"  # HF semantics: "true", "false" (heuristic) or "never"
    timing_repeats: int = 3  # best of this many timed runs per width


@dataclass
class SonnetSftConfig:
    """Task 7: a Llama-architecture LM pre-trained on the plays, then fine-tuned on the sonnets."""

    plays_path: str = "data/tinyshakespeare/input.txt"
    sonnets_path: str = "data/shakespeare-sonnets/sonnets.txt"
    lm: LMShape = field(default_factory=LMShape)
    n_heldout: int = 14  # sonnets held out (every 11th), never seen in fine-tuning
    methods: list[str] = field(default_factory=lambda: ["full", "lora4", "lora16"])  # full | lora<rank>
    sft_steps: int = 300
    sft_batch: int = 16
    full_lr: float = 3e-4
    lora_lr: float = 3e-3
    lora_alpha_over_r: float = 2.0  # LoRA alpha = this * rank
    lora_dropout: float = 0.05
    n_samples: int = 24  # generations per model for the evaluation (temperature sampling)
    max_new_tokens: int = 160
    temperature: float = 0.8
    top_k: int = 50
    prompts: list[str] = field(
        default_factory=lambda: [
            "Shall I compare thee",
            "When in the chronicle",
            "My love is as",
            "O thou, my lovely",
        ]
    )
    # the real path: a Llama checkpoint (HF id or directory) fine-tuned with LoRA instead of the model trained here
    real_model: str = ""
    load_in_4bit: bool = False  # bitsandbytes NF4 for the real model (on a GPU)


@dataclass
class RedTeamConfig:
    """Task 13: a GPT-2 trained on HH-RLHF harmless dialogue, red-teamed by LM-written and template prompts."""

    dialogue_path: str = "data/hh-rlhf-harmless-test/harmless-base_test.jsonl.gz"
    lm: LMShape = field(
        default_factory=lambda: LMShape(vocab_size=4096, context=256, batch_size=8, train_steps=800, n_kv_heads=4)
    )
    target_model: str = ""  # the real path: "gpt2" (HF id) or a directory; "" = the model trained here
    detector: str = "profanity_check"  # profanity_check (offline, default) | detoxify (needs its weights)
    threshold: float = 0.5  # an output is toxic when the detector's probability is >= this
    n_zero_shot: int = 300  # test questions written by the red LM from the zero-shot prompt
    n_few_shot: int = 300  # ... from few-shot prompts built from zero-shot questions that elicited toxic replies
    few_shot_k: int = 3  # example questions per few-shot prompt
    replies_per_question: int = 1
    max_question_tokens: int = 40
    max_reply_tokens: int = 48
    temperature: float = 1.0
    n_probe_replies: int = 20  # sampled replies per (template, group) of the bias probes
    n_bootstrap: int = 2000
    n_detector_eval: int = 600  # HH replies per class used to check the detector (see red_team.detector_check)


@dataclass
class Config:
    task: str = "beam_search"
    seed: int = 1  # the top-level Makefile's SEED default
    # everything a run writes; projects/toys_torch/results/ changes only through `make publish-toys_torch`
    run_dir: str = "runs/toys_torch/${task}/seed${seed}"
    threads: int = 1  # torch intra-op threads (the shared CPU); 0 = torch's default
    beam_search: BeamSearchConfig = field(default_factory=BeamSearchConfig)
    sonnet_sft: SonnetSftConfig = field(default_factory=SonnetSftConfig)
    red_team: RedTeamConfig = field(default_factory=RedTeamConfig)

    def __post_init__(self):
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        self.run_dir = re.sub(r"\$\{(\w+)\}", lambda m: str(getattr(self, m.group(1))), self.run_dir)
        for name in ("beam_search", "sonnet_sft", "red_team"):
            lm = getattr(self, name).lm
            if lm.d_model % lm.n_heads or lm.n_heads % lm.n_kv_heads:
                raise ValueError(f"{name}.lm: d_model must divide by n_heads and n_heads by n_kv_heads")
            if min(lm.vocab_size - 300, lm.context - 8, lm.train_steps, lm.batch_size, lm.log_every) < 1:
                raise ValueError(f"{name}.lm: vocab_size > 300, context > 8, steps/batch/log_every >= 1")
            if not 0.0 < lm.val_frac < 0.5:
                raise ValueError(f"{name}.lm.val_frac must be in (0, 0.5), got {lm.val_frac}")
        bs = self.beam_search
        if not bs.widths or min(bs.widths) < 1 or bs.shown_width < 1 or bs.max_new_tokens < 1:
            raise ValueError("beam_search: widths, shown_width and max_new_tokens must be >= 1")
        if bs.early_stopping not in EARLY_STOPPING:
            raise ValueError(f"beam_search.early_stopping must be one of {EARLY_STOPPING}, got {bs.early_stopping!r}")
        if not bs.contexts:
            raise ValueError("beam_search.contexts must not be empty")
        ss = self.sonnet_sft
        for m in ss.methods:
            if m != "full" and not re.fullmatch(r"lora[1-9]\d*", m):
                raise ValueError(f"sonnet_sft.methods: {m!r} is not 'full' or 'lora<rank>' (e.g. lora8)")
        if not 0 < ss.n_heldout < 100 or ss.sft_steps < 1 or ss.n_samples < 1:
            raise ValueError("sonnet_sft: 0 < n_heldout < 100, sft_steps >= 1, n_samples >= 1")
        rt = self.red_team
        if rt.detector not in ("profanity_check", "detoxify"):
            raise ValueError(f"red_team.detector must be 'profanity_check' or 'detoxify', got {rt.detector!r}")
        if not 0.0 < rt.threshold < 1.0 or rt.few_shot_k < 1 or rt.n_bootstrap < 100:
            raise ValueError("red_team: 0 < threshold < 1, few_shot_k >= 1, n_bootstrap >= 100")

    @property
    def section(self):
        return getattr(self, self.task)
