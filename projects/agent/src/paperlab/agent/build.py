"""Turn a ``Config`` into the parts: a model backend, the tool registry, the agent settings."""

from __future__ import annotations

import os

from paperlab.agent.agent import AgentSettings
from paperlab.agent.build_data import DB_PATH
from paperlab.agent.config import Config
from paperlab.agent.llm import HFModel, Model, OpenAIChatModel
from paperlab.agent.memory import HashingEmbedder, HFEmbedder
from paperlab.agent.sandbox import SandboxLimits
from paperlab.agent.search import LocalBM25, WebSearch
from paperlab.agent.tools import CalculatorTool, PythonTool, SearchTool, SQLTool, ToolRegistry


def make_tools(cfg: Config) -> ToolRegistry:
    limits = SandboxLimits(
        timeout_s=cfg.sandbox_timeout_s,
        memory_mb=cfg.sandbox_memory_mb,
        cpu_s=cfg.sandbox_cpu_s,
        max_procs=cfg.sandbox_max_procs,
        max_file_mb=cfg.sandbox_max_file_mb,
        max_output_chars=cfg.sandbox_max_output_chars,
    )
    search = LocalBM25() if cfg.search_backend == "local" else WebSearch(cfg.search_url)
    return ToolRegistry([PythonTool(limits), CalculatorTool(), SearchTool(search), SQLTool(DB_PATH)])


def settings(cfg: Config, reflection: bool | None = None) -> AgentSettings:
    return AgentSettings(
        max_steps=cfg.max_steps,
        max_tokens=cfg.max_tokens,
        repeat_limit=cfg.repeat_limit,
        plan=cfg.plan,
        reflection=cfg.reflection if reflection is None else reflection,
        short_term_tokens=cfg.short_term_tokens,
        memory_k=cfg.memory_k,
    )


def make_embedder(cfg: Config):
    if cfg.embed_model_dir:
        if not os.path.isdir(cfg.embed_model_dir):
            raise FileNotFoundError(f"embed_model_dir={cfg.embed_model_dir!r} is not a local model directory")
        return HFEmbedder(cfg.embed_model_dir)
    return HashingEmbedder(cfg.embed_dim)


def api_key(cfg: Config) -> str:
    return os.environ.get(cfg.api_key_env, "")


def make_model(cfg: Config) -> Model:
    """A real backend. ``scripted`` has no generic model: the harness builds one per task (tasks.py)."""
    if cfg.backend == "openai":
        base_url = cfg.base_url or os.environ.get("OPENAI_BASE_URL", "")
        model = cfg.model or os.environ.get("OPENAI_MODEL", "")
        if not base_url or not model:
            raise ValueError(
                "backend=openai needs base_url=... and model=... (or OPENAI_BASE_URL and OPENAI_MODEL), "
                "e.g. base_url=http://127.0.0.1:8080/v1 for a local llama.cpp server"
            )
        return OpenAIChatModel(
            base_url,
            model,
            api_key(cfg),
            timeout_s=cfg.request_timeout_s,
            max_retries=cfg.max_retries,
            backoff_s=cfg.backoff_s,
            temperature=cfg.temperature,
            max_new_tokens=cfg.max_new_tokens,
            native_tools=cfg.native_tools,
        )
    if cfg.backend == "hf":
        return HFModel(cfg.model_dir, cfg.max_new_tokens, cfg.temperature, cfg.seed)
    raise ValueError(
        "backend=scripted replays the task suite's scripts: use it with make eval-agent; "
        "for a free task choose backend=openai or backend=hf"
    )
