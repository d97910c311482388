"""Run traces: a JSONL file of events (messages, tool calls, observations, timings, tokens) and a
readable Markdown log of the same run. Every string passes through ``Redactor`` first, so an API key
that reaches a prompt, a reply or a tool output is written as ``[REDACTED]``.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.I)
_SECRET_PATTERNS = [
    re.compile(p)
    for p in (
        r"sk-[A-Za-z0-9_\-]{16,}",
        r"(?i)bearer\s+[A-Za-z0-9_\-.=]{8,}",
        r"hf_[A-Za-z0-9]{16,}",
        r"AKIA[0-9A-Z]{16}",
    )
]


class Redactor:
    """Replaces the values of secret-looking environment variables, ``extra`` values and key patterns."""

    def __init__(self, extra: tuple[str, ...] = (), environ: dict[str, str] | None = None):
        env = os.environ if environ is None else environ
        values = {v for k, v in env.items() if _SECRET_NAME.search(k) and len(v) >= 8}
        values |= {v for v in extra if v and len(v) >= 4}
        self.values = sorted(values, key=len, reverse=True)

    def __call__(self, obj: Any) -> Any:
        if isinstance(obj, str):
            for v in self.values:
                obj = obj.replace(v, "[REDACTED]")
            for p in _SECRET_PATTERNS:
                obj = p.sub("[REDACTED]", obj)
            return obj
        if isinstance(obj, dict):
            return {k: self(v) for k, v in obj.items()}
        if isinstance(obj, (list, tuple)):
            return [self(v) for v in obj]
        return obj


class Tracer:
    """``event(kind, **fields)`` appends one JSON line and a Markdown section; files flush per event."""

    def __init__(self, path_stem: str | Path | None, redactor: Redactor | None = None, title: str = "agent run"):
        self.redact = redactor or Redactor()
        self.t0 = time.monotonic()
        self.events: list[dict] = []
        self._jsonl = self._md = None
        if path_stem is not None:
            stem = Path(path_stem)
            stem.parent.mkdir(parents=True, exist_ok=True)
            self._jsonl = open(stem.with_suffix(".jsonl"), "w")
            self._md = open(stem.with_suffix(".md"), "w")
            self._md.write(f"# {self.redact(title)}\n\n")

    def event(self, kind: str, **fields: Any) -> dict:
        ev = self.redact({"t": round(time.monotonic() - self.t0, 4), "kind": kind, **fields})
        self.events.append(ev)
        if self._jsonl:
            self._jsonl.write(json.dumps(ev, ensure_ascii=False) + "\n")
            self._jsonl.flush()
            self._md.write(_markdown(ev))
            self._md.flush()
        return ev

    def close(self) -> None:
        for f in (self._jsonl, self._md):
            if f:
                f.close()


def _block(text: str) -> str:
    return "```\n" + str(text).replace("```", "'''") + "\n```\n"


def _markdown(ev: dict) -> str:
    kind = ev["kind"]
    if kind == "task":
        return f"**Task:** {ev['task']}\n\n" + (
            f"**Recalled from memory:**\n{_block(ev['recalled'])}\n" if ev.get("recalled") else ""
        )
    if kind == "model_call":
        return (
            f"<sub>model call ({ev['purpose']}): {ev['prompt_tokens']} prompt + {ev['completion_tokens']} "
            f"completion tokens, {ev['elapsed_s']:.2f} s</sub>\n\n"
        )
    if kind == "plan":
        return f"### Plan\n{_block(ev['plan'])}\n"
    if kind == "thought":
        return f"### Step {ev['step']}\n**Thought:** {ev['text']}\n\n" if ev["text"] else f"### Step {ev['step']}\n"
    if kind == "tool_call":
        return f"**Action:** `{ev['name']}`\n{_block(ev['arguments'])}"
    if kind == "observation":
        label = "Observation (error)" if ev["error"] else "Observation"
        return f"**{label}** ({ev['elapsed_s']:.2f} s):\n{_block(ev['content'])}\n"
    if kind == "reflection":
        return f"### Reflection ({ev['trigger']})\n{_block(ev['text'])}\n"
    if kind == "answer":
        return f"### Final answer\n{_block(ev['answer'])}\n"
    if kind == "stop":
        return f"**Stopped:** {ev['reason']} after {ev['steps']} steps, {ev['tokens']} tokens\n\n"
    if kind == "check":
        return f"**Checker:** {'success' if ev['success'] else 'failure'}: {ev['reason']}\n\n"
    return f"_{kind}_: {_block(json.dumps({k: v for k, v in ev.items() if k not in ('t', 'kind')}))}\n"
