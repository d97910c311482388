"""Model backends behind one call: ``model.complete(messages, tools, purpose) -> Reply``.

* ``ScriptedModel`` replays scripted replies (tests and the offline demo); it is a test double, not a model.
* ``OpenAIChatModel``: any OpenAI-compatible ``/chat/completions`` endpoint (llama.cpp server, vLLM,
  Ollama, a hosted API) over plain ``httpx``, with native tool calls and retries on 429/5xx.
* ``HFModel``: a local Hugging Face causal LM directory; tools through the text format below.

Messages are OpenAI chat dicts. Models without native tool calling use the ReAct text format
(Yao et al. 2022), parsed by :func:`parse_text_reply`::

    Thought: ...
    Action: calculator
    Action Input: {"expression": "2+2"}
or
    Final Answer: ...
"""

from __future__ import annotations

import json
import os
import random
import re
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str  # raw JSON text, validated by the registry, not here


@dataclass
class Reply:
    content: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0


def count_tokens(text: str) -> int:
    """A tokenizer-free estimate (words and punctuation marks); API usage numbers replace it when given."""
    return len(re.findall(r"\w+|[^\w\s]", text or ""))


def messages_tokens(messages: list[dict]) -> int:
    return sum(
        count_tokens(m.get("content") or "")
        + sum(count_tokens(tc["function"]["arguments"]) for tc in m.get("tool_calls", []))
        + 4
        for m in messages
    )


_ACTION = re.compile(
    r"Action:\s*(?P<name>[\w\-.]+)\s*\n\s*Action Input:\s*(?P<args>.*?)(?=\n\s*(?:Observation|Thought|"
    r"Action|Final Answer)\s*:|\Z)",
    re.S,
)


def parse_text_reply(text: str, call_id: str = "call_0") -> Reply:
    """A ReAct text reply -> ``Reply``: the first Action becomes a tool call, else a Final Answer the content."""
    m = _ACTION.search(text)
    if m:
        args = m.group("args").strip().strip("`").removeprefix("json").strip()
        return Reply(content=text[: m.start()].strip(), tool_calls=[ToolCall(call_id, m.group("name"), args)])
    return Reply(content=text.strip())


def tools_as_text(tools: list[dict]) -> str:
    lines = [
        "You can use these tools. To call one, write exactly:",
        "Thought: <your reasoning>\nAction: <tool name>\nAction Input: <JSON arguments>",
        "then stop and wait for the Observation. When you know the answer, write 'Final Answer: <answer>'.",
        "Tools:",
    ]
    for t in tools:
        f = t["function"]
        lines.append(f"- {f['name']}: {f['description']} Arguments (JSON Schema): {json.dumps(f['parameters'])}")
    return "\n".join(lines)


class Model:
    native_tools = True

    def complete(self, messages: list[dict], tools: list[dict], purpose: str = "act") -> Reply:
        raise NotImplementedError


class ScriptedModel(Model):
    """Replays ``scripts[purpose]`` in order. An entry is a ``Reply``, a text (parsed as ReAct text) or a
    dict ``{"tool": name, "arguments": json_text_or_dict}`` / ``{"answer": text}``.

    ``switch`` maps a substring to another ``act`` script: if the first ``act`` prompt of an episode
    contains the substring (e.g. a lesson retrieved from memory), that script is replayed instead.
    Running out of script raises ``IndexError`` (a test that expects fewer calls is wrong).
    """

    def __init__(self, scripts: dict[str, list], switch: dict[str, list] | None = None):
        self.scripts = {k: list(v) for k, v in scripts.items()}
        self.switch = switch or {}
        self.calls: list[tuple[str, list[dict]]] = []
        self._pos: dict[str, int] = {}

    def complete(self, messages: list[dict], tools: list[dict], purpose: str = "act") -> Reply:
        if purpose == "act" and self._pos.get("act", 0) == 0:
            prompt = "\n".join(m.get("content") or "" for m in messages)
            for needle, script in self.switch.items():
                if needle in prompt:
                    self.scripts["act"] = list(script)
        self.calls.append((purpose, [dict(m) for m in messages]))
        i = self._pos.get(purpose, 0)
        script = self.scripts.get(purpose, [])
        if i >= len(script):
            raise IndexError(f"ScriptedModel: no scripted reply #{i + 1} for purpose '{purpose}'")
        self._pos[purpose] = i + 1
        reply = _to_reply(script[i], f"call_{purpose}_{i}")
        reply.prompt_tokens = messages_tokens(messages)
        reply.completion_tokens = count_tokens(reply.content) + sum(count_tokens(c.arguments) for c in reply.tool_calls)
        return reply


def _to_reply(entry: Any, call_id: str) -> Reply:
    if isinstance(entry, Reply):
        return Reply(entry.content, list(entry.tool_calls))
    if isinstance(entry, str):
        return parse_text_reply(entry, call_id)
    if "answer" in entry:
        return Reply(content=entry["answer"])
    args = entry["arguments"]
    args = args if isinstance(args, str) else json.dumps(args)
    return Reply(content=entry.get("thought", ""), tool_calls=[ToolCall(call_id, entry["tool"], args)])


class BackendError(Exception):
    """The model endpoint failed after all retries (or answered something that is not a chat completion)."""


class OpenAIChatModel(Model):
    """POST ``{base_url}/chat/completions``; retries 429 and 5xx (and connection errors) with exponential
    backoff and jitter, honouring ``Retry-After``; other 4xx fail at once with the server's message."""

    RETRY_STATUS = {429, 500, 502, 503, 504}

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str = "",
        timeout_s: float = 60.0,
        max_retries: int = 4,
        backoff_s: float = 1.0,
        temperature: float = 0.0,
        max_new_tokens: int = 512,
        native_tools: bool = True,
        sleep=time.sleep,
    ):
        import httpx

        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model, self.temperature, self.max_new_tokens = model, temperature, max_new_tokens
        self.max_retries, self.backoff_s, self.sleep = max_retries, backoff_s, sleep
        self.native_tools = native_tools
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = httpx.Client(timeout=timeout_s, headers=headers)
        self._httpx = httpx

    def request_body(self, messages: list[dict], tools: list[dict]) -> dict:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
            "max_tokens": self.max_new_tokens,
        }
        if tools and self.native_tools:
            body["tools"], body["tool_choice"] = tools, "auto"
        return body

    def complete(self, messages: list[dict], tools: list[dict], purpose: str = "act") -> Reply:
        body = self.request_body(messages, tools)
        for attempt in range(self.max_retries + 1):
            try:
                r = self.client.post(self.url, json=body)
            except self._httpx.TransportError as e:
                if attempt == self.max_retries:
                    raise BackendError(
                        f"cannot reach {self.url} ({type(e).__name__}); is the server running? "
                        "set base_url=... or OPENAI_BASE_URL"
                    ) from e
                self.sleep(self._delay(attempt, None))
                continue
            if r.status_code in self.RETRY_STATUS and attempt < self.max_retries:
                self.sleep(self._delay(attempt, r.headers.get("retry-after")))
                continue
            if r.status_code >= 400:
                raise BackendError(f"{self.url} answered HTTP {r.status_code}: {r.text[:200]}")
            return self.parse(r.json())
        raise AssertionError("unreachable")

    def _delay(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(float(retry_after), 60.0)
            except ValueError:
                pass
        return self.backoff_s * 2**attempt * (0.5 + random.random() / 2)

    def parse(self, data: dict) -> Reply:
        try:
            msg = data["choices"][0]["message"]
        except (KeyError, IndexError, TypeError) as e:
            raise BackendError(f"not a chat completion: {str(data)[:200]}") from e
        content = msg.get("content") or ""
        calls = [
            ToolCall(tc.get("id", f"call_{i}"), tc["function"]["name"], tc["function"].get("arguments") or "{}")
            for i, tc in enumerate(msg.get("tool_calls") or [])
        ]
        if not calls and not self.native_tools:
            return self._with_usage(parse_text_reply(content), data)
        return self._with_usage(Reply(content, calls), data)

    @staticmethod
    def _with_usage(reply: Reply, data: dict) -> Reply:
        usage = data.get("usage") or {}
        reply.prompt_tokens = int(usage.get("prompt_tokens", 0))
        reply.completion_tokens = int(usage.get("completion_tokens", 0)) or count_tokens(reply.content)
        return reply


class HFModel(Model):
    """A local ``transformers`` causal LM (a directory with config, weights and a tokenizer with a chat
    template). Tools go through the ReAct text format; decoding is greedy unless temperature > 0."""

    native_tools = False

    def __init__(self, model_dir: str, max_new_tokens: int = 512, temperature: float = 0.0, seed: int = 1):
        if not model_dir or not os.path.isdir(model_dir):
            raise FileNotFoundError(
                f"backend=hf needs model_dir=PATH, a local Hugging Face model directory "
                f"(got {model_dir!r}); nothing is downloaded"
            )
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True)
        self.model = AutoModelForCausalLM.from_pretrained(model_dir, local_files_only=True).eval()
        self.max_new_tokens, self.temperature, self.seed = max_new_tokens, temperature, seed

    def complete(self, messages: list[dict], tools: list[dict], purpose: str = "act") -> Reply:
        flat = []  # a chat template knows user/assistant/system; tool results become user turns
        for m in messages:
            content = m.get("content") or ""
            for tc in m.get("tool_calls", []):
                content += f"\nAction: {tc['function']['name']}\nAction Input: {tc['function']['arguments']}"
            role = "user" if m["role"] == "tool" else m["role"]
            flat.append({"role": role, "content": f"Observation: {content}" if m["role"] == "tool" else content})
        ids = self.tokenizer.apply_chat_template(
            flat, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        self.torch.manual_seed(self.seed)
        with self.torch.no_grad():
            out = self.model.generate(
                **ids,
                max_new_tokens=self.max_new_tokens,
                do_sample=self.temperature > 0,
                temperature=self.temperature or None,
                pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
            )
        new = out[0, ids["input_ids"].shape[1] :]
        text = self.tokenizer.decode(new, skip_special_tokens=True).split("Observation:")[0]
        reply = parse_text_reply(text)
        reply.prompt_tokens, reply.completion_tokens = int(ids["input_ids"].shape[1]), int(new.shape[0])
        return reply
