"""The OpenAI-compatible client against a stub HTTP server on 127.0.0.1; the ReAct text parser."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from paperlab.agent.llm import BackendError, OpenAIChatModel, ScriptedModel, parse_text_reply
from paperlab.agent.search import WebSearch

TOOLS = [
    {
        "type": "function",
        "function": {"name": "calculator", "description": "d", "parameters": {"type": "object", "properties": {}}},
    }
]


class Stub:
    """Answers each POST with the next (status, body, headers) of ``responses``; records requests."""

    def __init__(self, responses):
        self.responses, self.requests = list(responses), []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                n = int(self.headers.get("content-length") or 0)
                stub.requests.append(
                    {
                        "path": self.path,
                        "headers": dict(self.headers),
                        "body": json.loads(self.rfile.read(n)) if n else None,
                    }
                )
                status, body, headers = stub.responses.pop(0)
                data = json.dumps(body).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_POST = do_GET = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub():
    servers = []

    def make(responses):
        servers.append(Stub(responses))
        return servers[-1]

    yield make
    for s in servers:
        s.close()


def _completion(message, usage=None):
    return {
        "id": "x",
        "object": "chat.completion",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": usage or {"prompt_tokens": 11, "completion_tokens": 7},
    }


def test_request_format_and_tool_call_parsing(stub):
    tool_msg = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "calculator", "arguments": '{"expression": "2+2"}'},
            }
        ],
    }
    s = stub([(200, _completion(tool_msg), {})])
    model = OpenAIChatModel(s.url + "/v1", "my-model", api_key="sk-test-abcdefghijklmnop", max_new_tokens=64)
    reply = model.complete([{"role": "user", "content": "hi"}], TOOLS)
    req = s.requests[0]
    assert req["path"] == "/v1/chat/completions"
    assert req["headers"]["Authorization"] == "Bearer sk-test-abcdefghijklmnop"
    assert req["body"] == {
        "model": "my-model",
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0.0,
        "max_tokens": 64,
        "tools": TOOLS,
        "tool_choice": "auto",
    }
    assert [(c.id, c.name, c.arguments) for c in reply.tool_calls] == [
        ("call_1", "calculator", '{"expression": "2+2"}')
    ]
    assert (reply.prompt_tokens, reply.completion_tokens) == (11, 7)


def test_text_mode_sends_no_tools_and_parses_react_text(stub):
    text = 'Thought: add\nAction: calculator\nAction Input: {"expression": "2+2"}'
    s = stub([(200, _completion({"role": "assistant", "content": text}), {})])
    reply = OpenAIChatModel(s.url, "m", native_tools=False).complete([{"role": "user", "content": "x"}], TOOLS)
    assert "tools" not in s.requests[0]["body"] and "Authorization" not in s.requests[0]["headers"]
    assert reply.tool_calls[0].name == "calculator" and json.loads(reply.tool_calls[0].arguments) == {
        "expression": "2+2"
    }


def test_retries_on_429_and_5xx_with_backoff(stub):
    ok = (200, _completion({"role": "assistant", "content": "done"}), {})
    s = stub(
        [
            (429, {"error": "slow down"}, {"retry-after": "2"}),
            (503, {"error": "busy"}, {}),
            (500, {"error": "oops"}, {}),
            ok,
        ]
    )
    sleeps = []
    model = OpenAIChatModel(s.url, "m", max_retries=4, backoff_s=0.5, sleep=sleeps.append)
    assert model.complete([{"role": "user", "content": "x"}], []).content == "done"
    assert len(s.requests) == 4
    assert sleeps[0] == 2.0  # Retry-After is honoured
    assert 0.5 <= sleeps[1] <= 1.0 and 1.0 <= sleeps[2] <= 2.0  # backoff_s * 2**attempt * U(0.5, 1)


def test_gives_up_after_max_retries_and_never_retries_400(stub):
    s = stub([(503, {"error": "busy"}, {})] * 3)
    model = OpenAIChatModel(s.url, "m", max_retries=2, sleep=lambda _: None)
    with pytest.raises(BackendError, match="HTTP 503"):
        model.complete([{"role": "user", "content": "x"}], [])
    assert len(s.requests) == 3
    s2 = stub([(400, {"error": "bad model"}, {}), (200, {}, {})])
    with pytest.raises(BackendError, match="HTTP 400"):
        OpenAIChatModel(s2.url, "m", sleep=lambda _: None).complete([{"role": "user", "content": "x"}], [])
    assert len(s2.requests) == 1


def test_unreachable_server_is_one_clear_error():
    model = OpenAIChatModel("http://127.0.0.1:9", "m", max_retries=1, sleep=lambda _: None, timeout_s=2)
    with pytest.raises(BackendError, match="cannot reach .* is the server running"):
        model.complete([{"role": "user", "content": "x"}], [])


def test_web_search_backend_against_a_stub(stub):
    s = stub([(200, {"results": [{"title": "T", "content": "snippet", "url": "http://x", "score": 1.5}]}, {})])
    hits = WebSearch(s.url).search("bridge", k=3)
    assert s.requests[0]["path"].startswith("/search?q=bridge&format=json")
    assert [(h.title, h.text, h.source) for h in hits] == [("T", "snippet", "http://x")]


def test_parse_text_reply():
    r = parse_text_reply('Thought: look\nAction: search\nAction Input: {"query": "a"}\nObservation: fake')
    assert r.content == "Thought: look" and r.tool_calls[0].arguments == '{"query": "a"}'
    assert parse_text_reply("Final Answer: 42").tool_calls == []
    assert (
        parse_text_reply('Action: sql\nAction Input: ```json\n{"query": "x"}\n```').tool_calls[0].arguments
        == '{"query": "x"}'
    )


def test_scripted_model_replays_and_switches():
    m = ScriptedModel({"act": [{"answer": "a"}]}, switch={"LESSON": [{"answer": "b"}]})
    assert m.complete([{"role": "system", "content": "LESSON here"}], [], "act").content == "b"
    with pytest.raises(IndexError, match="no scripted reply #2"):
        m.complete([], [], "act")


def _call(name, args, i):
    return _completion(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": f"call_{i}", "type": "function", "function": {"name": name, "arguments": json.dumps(args)}}
            ],
        }
    )


def test_harness_against_an_openai_compatible_server(stub, tmp_path, monkeypatch):
    """The whole path: harness -> agent -> HTTP -> tool calls -> checker, with a stub server as the 'model'."""
    from paperlab.agent import evaluate

    s = stub(
        [
            (200, _completion({"role": "assistant", "content": "1. search\n2. calculator\n3. answer"}), {}),
            (200, _call("search", {"query": "Harbor Bridge opened"}, 1), {}),
            (200, _call("calculator", {"expression": "2025 - 1932"}, 2), {}),
            (200, _completion({"role": "assistant", "content": "It opened in 1932, 93 years before 2025."}), {}),
        ]
    )
    monkeypatch.setenv("TEST_AGENT_KEY", "sk-stub-0123456789abcdef")
    run = tmp_path / "run"
    evaluate.main(
        [
            f"run_dir={run}",
            "backend=openai",
            f"base_url={s.url}/v1",
            "model=stub",
            "attempts=1",
            "tasks=[bridge_years]",
            "conditions=[no_reflection]",
            "api_key_env=TEST_AGENT_KEY",
        ]
    )
    row = json.loads((run / "results.jsonl").read_text())
    assert row["success"] and row["steps"] == 3 and row["tokens"] == 4 * (11 + 7)  # the server's usage numbers
    last = s.requests[-1]["body"]["messages"]
    assert [m["role"] for m in last] == ["system", "user", "assistant", "tool", "assistant", "tool"]
    assert last[3]["tool_call_id"] == "call_1" and "1932" in last[3]["content"]
    assert last[5]["tool_call_id"] == "call_2" and "93" in last[5]["content"]
    assert all(r["headers"]["Authorization"] == "Bearer sk-stub-0123456789abcdef" for r in s.requests)
    for trace in (run / "traces").iterdir():
        assert "sk-stub-0123456789abcdef" not in trace.read_text()
