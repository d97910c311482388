"""Each tool: the happy path and its failure modes; the registry turns every bad call into an observation."""

import json
import sqlite3
from fractions import Fraction

import pytest

from paperlab.agent.build_data import DB_PATH, build
from paperlab.agent.calculator import CalculatorError, evaluate, format_number
from paperlab.agent.search import LocalBM25
from paperlab.agent.tools import CalculatorTool, SearchTool, SQLTool, Tool, ToolRegistry, validate


@pytest.mark.parametrize(
    "expr, value",
    [
        ("0.1 + 0.2", Fraction(3, 10)),
        ("1/3 * 3", 1),
        ("2**10", 1024),
        ("-(3 - 5) * 4 % 5", 3),
        ("7 // 2", 3),
        ("round(2/3, 2)", Fraction(67, 100)),
        ("max(1, 3/2, -2)", Fraction(3, 2)),
        ("2^3", 8),
    ],
)
def test_calculator_is_exact(expr, value):
    assert evaluate(expr) == value


def test_calculator_float_fallback_and_formatting():
    cagr = evaluate("(82.5/40)**(1/5) - 1")
    assert isinstance(cagr, float) and abs(cagr - ((82.5 / 40) ** 0.2 - 1)) < 1e-12
    assert format_number(Fraction(21, 4)) == "21/4 (≈ 5.25)" and format_number(Fraction(4)) == "4"


@pytest.mark.parametrize(
    "expr, message",
    [
        ("1/0", "division by zero"),
        ("9**9**9", "exponent"),
        ("__import__('os').system('true')", "unsupported"),
        ("x + 1", "unknown name 'x'"),
        ("foo(2)", "unknown function"),
        ("(1", "not an arithmetic expression"),
        ("[1, 2]", "unsupported"),
        ("10**4000 * 10**4000", "digits"),
        ("sqrt(-1)", "sqrt"),
    ],
)
def test_calculator_refuses(expr, message):
    with pytest.raises(CalculatorError, match=message):
        evaluate(expr)


def test_calculator_never_calls_eval(monkeypatch):
    import builtins

    monkeypatch.setattr(builtins, "eval", lambda *a: pytest.fail("eval called"))
    assert evaluate("6 * 7") == 42


def test_schema_validation():
    schema = {
        "type": "object",
        "properties": {"q": {"type": "string", "maxLength": 5}, "k": {"type": "integer", "minimum": 1}},
        "required": ["q"],
        "additionalProperties": False,
    }
    assert validate({"q": "abc", "k": 2}, schema) == []
    assert validate({"k": 2}, schema) == ["missing required argument 'q'"]
    assert validate({"q": "abc", "k": True}, schema) == ["argument 'k' must be of type integer, got bool"]
    assert validate({"q": "abcdefg"}, schema) == ["argument 'q' is longer than 5 characters"]
    assert validate({"q": "a", "k": 0}, schema) == ["argument 'k' must be >= 1"]
    assert "unexpected argument 'z'" in validate({"q": "a", "z": 1}, schema)[0]
    assert validate([1], schema) == ["arguments must be of type object, got list"]


class Boom(Tool):
    name = "boom"
    parameters = {"type": "object", "properties": {}, "required": []}

    def run(self):
        raise RuntimeError("kaput")


def test_registry_turns_bad_calls_into_error_observations():
    reg = ToolRegistry([CalculatorTool(), Boom()])
    assert reg.call("calculator", '{"expression": "1+1"}').content == "2"
    bad_json = reg.call("calculator", '{"expression": "1+1"')
    assert bad_json.error and "not valid JSON" in bad_json.content
    unknown = reg.call("web_lookup", "{}")
    assert unknown.error and "unknown tool 'web_lookup'" in unknown.content and "calculator, boom" in unknown.content
    missing = reg.call("calculator", "{}")
    assert missing.error and "missing required argument 'expression'" in missing.content
    crashed = reg.call("boom", "{}")
    assert crashed.error and "RuntimeError: kaput" in crashed.content
    refused = reg.call("calculator", json.dumps({"expression": "1/0"}))
    assert refused.error and "division by zero" in refused.content
    assert [s["function"]["name"] for s in reg.schemas()] == ["calculator", "boom"]
    assert reg.schemas()[0]["type"] == "function" and "parameters" in reg.schemas()[0]["function"]


def test_sql_reads_and_refuses_writes():
    sql = SQLTool(DB_PATH)
    obs = sql.run("SELECT ceo, hq_city FROM companies WHERE ticker = 'NWR'")
    assert not obs.error and obs.content.splitlines() == ["ceo | hq_city", "Ingrid Solberg | Trondheim"]
    for query in ("DELETE FROM prices", "DROP TABLE companies", "INSERT INTO prices VALUES ('X', 1, 1.0)"):
        obs = sql.run(query)
        assert obs.error and "SQL" in obs.content, query
    assert sql.run("SELECT COUNT(*) FROM prices").content.splitlines()[1] == "21"
    assert sql.run("SELECT * FROM nope").error


def test_sql_caps_rows_and_time():
    sql = SQLTool(DB_PATH, max_rows=5, timeout_s=0.2)
    assert "more than 5 rows" in sql.run("SELECT * FROM prices").content
    slow = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT COUNT(*) FROM c"
    obs = sql.run(slow)
    assert obs.error and "time limit" in obs.content


def test_bundled_database_matches_its_build_script(tmp_path):
    build(tmp_path / "db.sqlite")

    def dump(path):
        con = sqlite3.connect(path)
        rows = list(con.iterdump())
        con.close()
        return rows

    assert dump(tmp_path / "db.sqlite") == dump(DB_PATH)


def test_search_ranks_the_right_passage_first():
    tool = SearchTool(LocalBM25())
    first = tool.run("Harbor Bridge opened").content.splitlines()[0]
    assert "port-meridian-history.md" in first and "1932" in first
    assert "northwind-products.md" in tool.run("Kestrel inspection drone", k=1).content
    assert tool.run("the of and").content.startswith("no results")
