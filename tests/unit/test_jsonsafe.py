"""Strict JSON (gateway.core.jsonsafe): no NaN or infinities either way, a depth limit checked
before parsing (no RecursionError, linear time), UTF-8 only."""

from __future__ import annotations

import json
import time

import pytest

from gateway.core.errors import GatewayError
from gateway.core.jsonsafe import JsonRejected
from gateway.core.jsonsafe import dumps_strict
from gateway.core.jsonsafe import loads_strict
from gateway.core.jsonsafe import nesting_depth


@pytest.mark.parametrize("text", [
    "NaN", "Infinity", "-Infinity", "[1, NaN]", '{"a": {"b": [Infinity]}}', '{"x": -Infinity}',
    "1e999", "[-1e400]", '{"big": 1E+309}',  # Python reads these as inf
])
def test_non_finite_numbers_are_refused(text):
    with pytest.raises(JsonRejected) as refused:
        loads_strict(text)
    assert isinstance(refused.value, ValueError) and isinstance(refused.value, GatewayError)
    assert refused.value.code == "bad_request"


def test_ordinary_json_reads_as_json_does():
    text = '{"a": [1, 2.5, -3e2, true, false, null, "x\\"[{", {"b": {}}], "é": "\\u00e9"}'
    assert loads_strict(text) == json.loads(text)
    assert loads_strict(text.encode("utf-8")) == json.loads(text)
    assert loads_strict("1e308") == 1e308 and loads_strict("-0.0") == 0.0


def nested(depth: int, kind: str = "[") -> str:
    if kind == "[":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


@pytest.mark.parametrize("kind", ["[", "{"])
def test_depth_limit_is_exact(kind):
    assert loads_strict(nested(32, kind)) is not None
    with pytest.raises(JsonRejected, match="deeper than 32"):
        loads_strict(nested(33, kind))
    assert loads_strict(nested(5, kind), max_depth=5) is not None
    with pytest.raises(JsonRejected):
        loads_strict(nested(6, kind), max_depth=5)


@pytest.mark.parametrize("text", [
    nested(100_000), nested(100_000, "{"),
    "[" * 100_000,  # truncated: a recursive parser would still dive in
    '{"a":' * 100_000,
    '["\\\\",' * 50_000 + "]" * 50_000,  # escaped backslashes before the closing quotes
])
def test_a_deep_body_is_refused_without_recursion_in_linear_time(text):
    started = time.perf_counter()
    with pytest.raises(JsonRejected, match="deeper than"):
        loads_strict(text)
    # json.loads raises RecursionError on these; the scan is linear (~20 ms here).
    assert time.perf_counter() - started < 2.0


def test_brackets_inside_strings_do_not_count():
    assert nesting_depth('["[[[[", "\\"[[[[", {"k[": "]]]]"}]') == 2
    deep_string = json.dumps({"text": "[" * 100_000 + '\\"' + "{" * 1000})
    assert loads_strict(deep_string)["text"].startswith("[[[")
    assert nesting_depth("42") == 0 and nesting_depth('"["') == 0


@pytest.mark.parametrize("text", [
    b"\xff", b'{"a": "\xc3"}', '{"a": 1}'.encode("utf-16"), b"\xef\xbb\xbf{}",  # BOM
    "{'a': 1}", '{"a": 1} x', "", "[1,]", '{"a"}', '"\x01"',
])
def test_not_json_or_not_utf8_is_refused(text):
    with pytest.raises(JsonRejected):
        loads_strict(text)


def test_an_integer_of_too_many_digits_is_refused_not_raised():
    with pytest.raises(JsonRejected):
        loads_strict("1" * 5000)


def test_dumps_strict_refuses_what_is_not_json():
    assert dumps_strict({"a": [1, 2.5, None, "é"]}) == '{"a":[1,2.5,null,"\\u00e9"]}'
    for value in (float("nan"), {"a": [float("inf")]}, -float("inf"), {1, 2}, object()):
        with pytest.raises(JsonRejected):
            dumps_strict(value)
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(JsonRejected):
        dumps_strict(loop)
    assert dumps_strict([[1]], max_depth=2) == "[[1]]"
    with pytest.raises(JsonRejected):
        dumps_strict([[[1]]], max_depth=2)
