"""Tools in the OpenAI function-calling format: a name, a description, a JSON-Schema of the arguments.

``ToolRegistry.call(name, arguments_json)`` is the one door from the model to the world. It never
raises: invalid JSON, a schema violation, an unknown tool or a tool's own failure come back as an
``Observation`` with ``error`` set, which the agent shows to the model as the next observation.
"""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paperlab.agent.calculator import CalculatorError, evaluate, format_number
from paperlab.agent.sandbox import SandboxLimits, run_python
from paperlab.agent.search import SearchBackend

_TYPES = {"string": str, "integer": int, "number": (int, float), "boolean": bool, "object": dict, "array": list}


def validate(value: Any, schema: dict, where: str = "arguments") -> list[str]:
    """The violations of ``value`` against the subset of JSON Schema tools use (type, properties,
    required, additionalProperties, enum, items, minimum, maximum, maxLength)."""
    errors: list[str] = []
    kind = schema.get("type")
    if kind:
        ok = isinstance(value, _TYPES[kind]) and not (kind in ("integer", "number") and isinstance(value, bool))
        if not ok:
            return [f"{where} must be of type {kind}, got {type(value).__name__}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where} must be one of {schema['enum']}, got {value!r}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        errors += [f"missing required argument '{k}'" for k in schema.get("required", []) if k not in value]
        if schema.get("additionalProperties") is False:
            errors += [f"unexpected argument '{k}' (allowed: {', '.join(props)})" for k in value if k not in props]
        for k, v in value.items():
            if k in props:
                errors += validate(v, props[k], f"argument '{k}'")
    if isinstance(value, list) and "items" in schema:
        for i, v in enumerate(value):
            errors += validate(v, schema["items"], f"{where}[{i}]")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{where} must be >= {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{where} must be <= {schema['maximum']}")
    if isinstance(value, str) and "maxLength" in schema and len(value) > schema["maxLength"]:
        errors.append(f"{where} is longer than {schema['maxLength']} characters")
    return errors


@dataclass
class Observation:
    content: str
    error: bool = False
    elapsed_s: float = 0.0
    meta: dict = field(default_factory=dict)


class Tool:
    name: str = ""
    description: str = ""
    parameters: dict = {}

    def run(self, **kwargs) -> Observation:
        raise NotImplementedError

    def schema(self) -> dict:
        """The OpenAI ``tools=[...]`` entry."""
        return {
            "type": "function",
            "function": {"name": self.name, "description": self.description, "parameters": self.parameters},
        }


def _object(properties: dict, required: list[str]) -> dict:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


class CalculatorTool(Tool):
    name = "calculator"
    description = (
        "Evaluate an arithmetic expression exactly (rationals; + - * / // % ** and sqrt, exp, ln, log10, "
        "round, min, max, abs, pi, e). Example: (82.5/40)**(1/5) - 1"
    )
    parameters = _object({"expression": {"type": "string", "maxLength": 1000}}, ["expression"])

    def run(self, expression: str) -> Observation:
        try:
            return Observation(format_number(evaluate(expression)))
        except CalculatorError as e:
            return Observation(f"error: {e}", error=True)


class PythonTool(Tool):
    name = "python"
    description = (
        "Run Python 3 code in a sandbox (separate process, no network, a temporary directory, "
        "time and memory limits) and return what it prints. Use print() for results."
    )
    parameters = _object({"code": {"type": "string", "maxLength": 20000}}, ["code"])

    def __init__(self, limits: SandboxLimits | None = None):
        self.limits = limits or SandboxLimits()

    def run(self, code: str) -> Observation:
        result = run_python(code, self.limits)
        return Observation(
            result.observation(),
            error=not result.ok,
            meta={"returncode": result.returncode, "timed_out": result.timed_out, "isolation": result.isolation},
        )


class SearchTool(Tool):
    name = "search"
    description = "Search the document collection; returns the best matching passages with their source."
    parameters = _object(
        {"query": {"type": "string", "maxLength": 500}, "k": {"type": "integer", "minimum": 1, "maximum": 10}},
        ["query"],
    )

    def __init__(self, backend: SearchBackend):
        self.backend = backend

    def run(self, query: str, k: int = 3) -> Observation:
        hits = self.backend.search(query, k)
        if not hits:
            return Observation(f"no results for {query!r}")
        return Observation("\n".join(f"[{i + 1}] {h.title} ({h.source}): {h.text}" for i, h in enumerate(hits)))


class SQLTool(Tool):
    """Read-only SQL over a SQLite file: opened with ``mode=ro`` and ``query_only``, row and time capped."""

    name = "sql"
    description = (
        "Run one read-only SQLite query. Tables: companies(ticker, name, sector, hq_city, ceo, founded), "
        "prices(ticker, year, close), financials(ticker, year, revenue_musd)."
    )
    parameters = _object({"query": {"type": "string", "maxLength": 4000}}, ["query"])

    def __init__(self, db_path: Path, max_rows: int = 50, timeout_s: float = 2.0):
        if not Path(db_path).is_file():
            raise FileNotFoundError(f"SQL tool: no database at {db_path} (python -m paperlab.agent.build_data)")
        self.db_path, self.max_rows, self.timeout_s = Path(db_path), max_rows, timeout_s

    def run(self, query: str) -> Observation:
        con = sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True)
        deadline = time.monotonic() + self.timeout_s
        con.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
        try:
            con.execute("PRAGMA query_only = ON")
            cur = con.execute(query)
            rows = cur.fetchmany(self.max_rows + 1)
            cols = [d[0] for d in cur.description or []]
        except sqlite3.Error as e:
            msg = "query took longer than the time limit" if "interrupted" in str(e) else str(e)
            return Observation(f"error: SQL: {msg}", error=True)
        finally:
            con.close()
        more = len(rows) > self.max_rows
        lines = [" | ".join(cols)] + [" | ".join(map(str, r)) for r in rows[: self.max_rows]]
        if more:
            lines.append(f"... (more than {self.max_rows} rows; add LIMIT or WHERE)")
        return Observation("\n".join(lines) if cols else "(no rows)")


class ToolRegistry:
    def __init__(self, tools: list[Tool]):
        self.tools = {t.name: t for t in tools}

    def schemas(self) -> list[dict]:
        return [t.schema() for t in self.tools.values()]

    def call(self, name: str, arguments: str | dict) -> Observation:
        start = time.monotonic()
        obs = self._call(name, arguments)
        obs.elapsed_s = time.monotonic() - start
        return obs

    def _call(self, name: str, arguments: str | dict) -> Observation:
        if name not in self.tools:
            return Observation(f"error: unknown tool '{name}'; available tools: {', '.join(self.tools)}", error=True)
        tool = self.tools[name]
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except json.JSONDecodeError as e:
                return Observation(
                    f"error: the arguments of tool '{name}' are not valid JSON ({e.msg} at "
                    f"character {e.pos}); send a JSON object matching its schema",
                    error=True,
                )
        problems = validate(arguments, tool.parameters)
        if problems:
            return Observation(f"error: tool '{name}': {'; '.join(problems)}", error=True)
        try:
            return tool.run(**arguments)
        except Exception as e:  # a tool's own failure is an observation, never the end of the loop
            return Observation(f"error: tool '{name}' failed: {type(e).__name__}: {e}", error=True)
