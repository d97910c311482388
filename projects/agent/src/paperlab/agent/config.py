"""One typed config for the agent, its backend, its tools and the evaluation harness."""

from __future__ import annotations

from dataclasses import dataclass, field

BACKENDS = ("scripted", "openai", "hf")
SEARCH_BACKENDS = ("local", "web")


@dataclass
class Config:
    # --- model backend
    backend: str = "scripted"  # scripted (the offline demo/tests) | openai (any compatible endpoint) | hf
    model: str = ""  # openai: the model name the server expects; empty -> $OPENAI_MODEL
    base_url: str = ""  # openai: e.g. http://127.0.0.1:8080/v1; empty -> $OPENAI_BASE_URL
    api_key_env: str = "OPENAI_API_KEY"  # the NAME of the variable holding the key (the key is never in a config)
    model_dir: str = ""  # hf: a local Hugging Face model directory
    native_tools: bool = True  # openai: use the tools=[...] API; false -> ReAct text format
    temperature: float = 0.0
    max_new_tokens: int = 512
    request_timeout_s: float = 120.0
    max_retries: int = 4
    backoff_s: float = 1.0
    # --- the loop
    max_steps: int = 12
    max_tokens: int = 20000
    repeat_limit: int = 3
    plan: bool = True
    reflection: bool = True
    short_term_tokens: int = 3000
    memory_k: int = 3
    embed_dim: int = 1024  # hashing embedder
    embed_model_dir: str = ""  # a local Hugging Face encoder directory: replaces the hashing embedder
    # --- tools
    search_backend: str = "local"
    search_url: str = ""
    sandbox_timeout_s: float = 10.0
    sandbox_memory_mb: int = 512
    sandbox_cpu_s: int = 10
    sandbox_max_procs: int = 16
    sandbox_max_file_mb: int = 8
    sandbox_max_output_chars: int = 4000
    # --- a single run (python -m paperlab.agent.run) or the harness (python -m paperlab.agent.evaluate)
    task: str = ""
    tasks: list[str] = field(default_factory=list)  # empty: the whole suite
    attempts: int = 2  # k attempts per task; with reflection the lessons of failed attempts carry over
    conditions: list[str] = field(default_factory=lambda: ["no_reflection", "reflection"])
    run_dir: str = "runs/agent/eval/scripted"
    seed: int = 1

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.search_backend not in SEARCH_BACKENDS:
            raise ValueError(f"search_backend must be one of {', '.join(SEARCH_BACKENDS)}, got {self.search_backend!r}")
        bad = [c for c in self.conditions if c not in ("no_reflection", "reflection")]
        if bad or not self.conditions:
            raise ValueError(f"conditions must be a non-empty subset of [no_reflection, reflection], got {bad}")
        for name in (
            "max_steps",
            "max_tokens",
            "repeat_limit",
            "attempts",
            "short_term_tokens",
            "sandbox_memory_mb",
            "sandbox_cpu_s",
            "sandbox_max_procs",
            "sandbox_max_file_mb",
            "sandbox_max_output_chars",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.memory_k < 0 or self.max_retries < 0:
            raise ValueError("memory_k and max_retries must be >= 0")
