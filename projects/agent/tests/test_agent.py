"""The loop on scripted conversations: tool use, reflection, budgets, repeated actions, memory, traces."""

import json

import numpy as np

from paperlab.agent.agent import Agent, AgentSettings, parse_plan
from paperlab.agent.llm import ScriptedModel
from paperlab.agent.memory import HashingEmbedder, LongTermMemory, ShortTermMemory
from paperlab.agent.tools import CalculatorTool, ToolRegistry
from paperlab.agent.trace import Redactor, Tracer

TOOLS = ToolRegistry([CalculatorTool()])


def _calc(expr):
    return {"tool": "calculator", "arguments": {"expression": expr}}


def test_tool_use_then_answer():
    model = ScriptedModel({"plan": ["1. calculator: 6*7\n2. answer"], "act": [_calc("6*7"), {"answer": "42"}]})
    res = Agent(model, TOOLS).run("What is 6 times 7?")
    assert (res.answer, res.stop_reason, res.steps, res.tool_calls, res.tool_errors) == ("42", "answer", 2, 1, 0)
    assert res.plan == ["calculator: 6*7", "answer"]
    # the observation went back to the model as a tool message paired with its call id, and the plan is in the prompt
    purpose, messages = model.calls[-1]
    assert purpose == "act" and "Current plan:\n1. calculator: 6*7" in messages[0]["content"]
    tool_msg = messages[-1]
    assert tool_msg["role"] == "tool" and tool_msg["tool_call_id"] == messages[-2]["tool_calls"][0]["id"]
    assert "42" in tool_msg["content"] and "<tool_output>" in tool_msg["content"]


def test_reflection_after_a_failed_step_updates_plan_and_stores_a_lesson():
    memory = LongTermMemory()
    model = ScriptedModel(
        {
            "plan": ["1. calculator\n2. answer"],
            "act": [{"tool": "calculator", "arguments": '{"expression": '}, _calc("1+1"), {"answer": "2"}],
            "reflect": ["The JSON was cut off. Send complete JSON.\n1. calculator: 1+1\n2. answer"],
        }
    )
    res = Agent(model, TOOLS, memory, AgentSettings(reflection=True)).run("one plus one", scope="t")
    assert res.answer == "2" and res.tool_errors == 1 and res.reflections == 1
    assert res.plan == ["calculator: 1+1", "answer"] and res.lessons == ["The JSON was cut off. Send complete JSON."]
    assert [t for _, t in memory.search("cut off JSON", scope="t")] == ["The JSON was cut off. Send complete JSON."]
    reflect_prompt = [m for p, m in model.calls if p == "reflect"][0][-1]["content"]
    assert "not valid JSON" in reflect_prompt
    # without reflection the same error is only an observation: no reflect call, nothing stored
    model = ScriptedModel({"act": [{"tool": "calculator", "arguments": "{"}, _calc("1+1"), {"answer": "2"}]})
    res = Agent(model, TOOLS, LongTermMemory(), AgentSettings(reflection=False, plan=False)).run("one plus one")
    assert res.answer == "2" and res.reflections == 0 and all(p == "act" for p, _ in model.calls)


def test_step_budget():
    model = ScriptedModel({"act": [_calc(f"{i}+1") for i in range(10)]})
    res = Agent(model, TOOLS, settings=AgentSettings(max_steps=3, plan=False)).run("count")
    assert (res.answer, res.stop_reason, res.steps) == (None, "step_budget", 3)


def test_token_budget():
    model = ScriptedModel({"act": [_calc(f"{i}+1") for i in range(10)]})
    res = Agent(model, TOOLS, settings=AgentSettings(max_tokens=400, plan=False)).run("count")
    assert res.stop_reason == "token_budget" and res.tokens >= 400 and res.steps < 10


def test_repeated_action_is_detected():
    model = ScriptedModel({"act": [_calc("1+1")] * 5})
    res = Agent(model, TOOLS, settings=AgentSettings(repeat_limit=3, plan=False)).run("loop")
    assert res.stop_reason == "repeated_action" and res.tool_calls == 2 and res.steps == 3
    # different arguments are not a repetition; the same JSON with other spacing is
    model = ScriptedModel(
        {
            "act": [
                _calc("1+1"),
                {"tool": "calculator", "arguments": '{"expression":"1+1"}'},
                _calc("1+2"),
                {"answer": "3"},
            ]
        }
    )
    res = Agent(model, TOOLS, settings=AgentSettings(repeat_limit=3, plan=False)).run("loop")
    assert res.stop_reason == "answer"


def test_unknown_tool_and_bad_arguments_never_crash_the_loop():
    model = ScriptedModel(
        {
            "act": [
                {"tool": "web", "arguments": {}},
                {"tool": "calculator", "arguments": {"x": 1}},
                {"tool": "calculator", "arguments": "not json"},
                {"answer": "gave up"},
            ]
        }
    )
    res = Agent(model, TOOLS, settings=AgentSettings(plan=False, reflection=False)).run("x")
    assert res.answer == "gave up" and res.tool_errors == 3
    observations = [m["content"] for m in model.calls[-1][1] if m["role"] == "tool"]
    assert "unknown tool 'web'" in observations[0] and "missing required argument" in observations[1]
    assert "not valid JSON" in observations[2]


def test_text_format_backend():
    class TextModel(ScriptedModel):
        native_tools = False

    model = TextModel(
        {
            "act": [
                'Thought: multiply\nAction: calculator\nAction Input: {"expression": "6*7"}',
                "I think it is done.",
                "Final Answer: 42",
            ]
        }
    )
    res = Agent(model, TOOLS, settings=AgentSettings(plan=False, reflection=False)).run("6*7?")
    assert res.answer == "42" and res.tool_calls == 1 and res.tool_errors == 1  # the bare thought is a format error
    system = model.calls[0][1][0]["content"]
    assert "Action Input:" in system and '"expression"' in system
    assert model.calls[-1][1][3]["content"].startswith("Observation: <tool_output>\n42")


def test_parse_plan():
    assert parse_plan("Went wrong: X.\n1. a\n2) b\nnot a step") == ("Went wrong: X.", ["a", "b"])


def test_short_term_memory_summarises_whole_turns_within_budget():
    stm = ShortTermMemory(budget_tokens=200)
    stm.add({"role": "system", "content": "sys"})
    stm.add({"role": "user", "content": "Task: t"})
    for i in range(20):
        stm.add(
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": f"c{i}",
                        "type": "function",
                        "function": {"name": "calculator", "arguments": json.dumps({"e": i})},
                    }
                ],
            }
        )
        stm.add({"role": "tool", "tool_call_id": f"c{i}", "content": f"result {i} " + "word " * 10})
    assert stm.tokens() <= 200 and stm.n_summaries > 0
    assert stm.messages[0]["content"] == "sys" and stm.messages[1]["content"] == "Task: t"
    assert stm.messages[2]["content"].startswith("[summary of earlier steps]")
    # every tool message still follows the assistant message that called it
    for i, m in enumerate(stm.messages):
        if m["role"] == "tool":
            prev = stm.messages[i - 1]
            assert prev["role"] == "assistant" and prev["tool_calls"][0]["id"] == m["tool_call_id"]
    assert stm.messages[-1]["content"].startswith("result 19")


def test_long_term_memory_ranks_the_relevant_lesson_first(tmp_path):
    mem = LongTermMemory(tmp_path / "m.sqlite", HashingEmbedder(512))
    lessons = [
        "For a CAGR over five years, divide the last close by the close five years earlier.",
        "SQL tables: prices has ticker, year and close columns.",
        "The Harbor Bridge question needs the search tool, not SQL.",
        "Send complete JSON arguments to the python tool.",
    ]
    for i, text in enumerate(lessons):
        mem.add(text, scope=f"s{i % 2}")
    for _ in range(200):  # distractors
        mem.add(f"unrelated fact number {_} about weather and football scores", kind="fact")
    assert mem.search("compute the five year CAGR of a stock", k=1)[0][1] == lessons[0]
    assert mem.search("python tool arguments JSON", k=1)[0][1] == lessons[3]
    assert mem.search("bridge", k=2, scope="s0")[0][1] == lessons[2]
    assert mem.search("bridge", kind="lesson", scope="s1") == []
    mem.close()
    reopened = LongTermMemory(tmp_path / "m.sqlite", HashingEmbedder(512))  # persisted on disk
    assert len(reopened) == 204 and reopened.forget_scope("s0") == 2 and len(reopened) == 202
    other = LongTermMemory(tmp_path / "m.sqlite", HashingEmbedder(256))  # vectors of another embedder stay hidden
    assert other.search("compute the five year CAGR of a stock") == []


def test_hashing_embedding_is_normalised_and_deterministic():
    e = HashingEmbedder(64).embed(["a b c", "a b c", ""])
    assert np.allclose(np.linalg.norm(e[:2], axis=1), 1) and np.array_equal(e[0], e[1]) and not e[2].any()


def test_secrets_never_reach_traces(tmp_path, monkeypatch):
    secret = "sk-live-0123456789abcdefXYZ"
    monkeypatch.setenv("MY_SERVICE_TOKEN", "tok-9876543210-secret")
    model = ScriptedModel({"act": [_calc("1+1"), {"answer": f"my key is {secret} and tok-9876543210-secret"}]})
    tracer = Tracer(tmp_path / "trace", Redactor(extra=(secret,)), title=f"run with {secret}")
    res = Agent(model, TOOLS, settings=AgentSettings(plan=False)).run(f"use {secret} and Bearer abcdefghijkl", tracer)
    tracer.close()
    assert res.answer.startswith("my key is")
    for name in ("trace.jsonl", "trace.md"):
        text = (tmp_path / name).read_text()
        assert secret not in text and "tok-9876543210-secret" not in text and "abcdefghijkl" not in text
        assert "[REDACTED]" in text
    events = [json.loads(line) for line in (tmp_path / "trace.jsonl").read_text().splitlines()]
    assert [e["kind"] for e in events][:3] == ["task", "model_call", "thought"] and events[-1]["kind"] == "stop"
