"""Origins: same-origin by default, exact and shell-style patterns (the policy alone; against
a real server: tests/integration/test_origins_server.py)."""

from __future__ import annotations

import pytest

from gateway.transport.origins import OriginPolicy
from gateway.transport.origins import cors_setting

HOST = {"HTTP_HOST": "gw.test:8000", "wsgi.url_scheme": "https"}


def test_policy_same_origin_exact_and_patterns():
    policy = OriginPolicy(["https://app.example.org", "https://*.example.com"])
    assert policy("https://gw.test:8000", HOST)  # the page's own origin
    assert policy("https://app.example.org", HOST)
    assert policy("https://a.example.com", HOST) and policy("https://A.Example.com", HOST)
    assert not policy("https://example.com.evil.test", HOST)
    assert not policy("http://a.example.com", HOST)  # the scheme is part of the origin
    assert not policy("https://evil.test", HOST)
    assert not policy("null", HOST)
    assert policy(None, HOST)  # no Origin header: not a browser


def test_default_is_same_origin_only_and_star_only_when_explicit():
    policy = cors_setting([])
    assert isinstance(policy, OriginPolicy)
    assert policy("https://gw.test:8000", HOST) and not policy("https://other.test", HOST)
    assert cors_setting(["*"]) == "*"
    assert isinstance(cors_setting(["https://*"]), OriginPolicy)


# -- pattern rules: only "*" is special, and it stays within one host label -----------


@pytest.mark.parametrize("origin", [
    "https://evil.test/.example.com",  # fnmatch's "*" took "/": a path...
    "https://evil.test?.example.com",  # ...a query...
    "https://evil.test#.example.com",  # ...a fragment...
    "https://x@evil.test/.example.com",  # ...user info...
    "https://evil.test:.example.com",  # ...a port separator
    "https://a.b.example.com",  # one label per "*"
    "https://.example.com.evil.test",
    "https://a.example.com\r\nx",
])
def test_a_star_matches_host_characters_of_one_label_only(origin):
    policy = OriginPolicy(["https://*.example.com"])
    assert not policy(origin, HOST)
    assert policy("https://a-1.example.com", HOST) and policy("https://A-1.EXAMPLE.com", HOST)
    assert OriginPolicy(["https://*.*.example.com"])("https://a.b.example.com", HOST)


def test_a_star_cannot_reach_past_its_domain():
    policy = OriginPolicy(["https://*.example.*", "https://app.example.org*", "http://localhost:*"])
    assert policy("https://a.example.com", HOST)
    assert not policy("https://a.example.evil.test", HOST)
    assert not policy("https://app.example.org@evil.test", HOST)
    assert not policy("https://app.example.org.evil.test", HOST)
    assert not policy("https://app.example.org:443", HOST)
    assert policy("http://localhost:5173", HOST)
    assert not policy("http://localhost:5173@evil.test", HOST)


def test_question_marks_and_brackets_are_plain_characters():
    assert not OriginPolicy(["https://?.example.com"])("https://a.example.com", HOST)
    assert not OriginPolicy(["https://[ab].example.com"])("https://a.example.com", HOST)
    assert OriginPolicy(["https://[ab].example.com"])("https://[ab].example.com", HOST)


def test_an_ipv6_origin_is_exact():
    policy = OriginPolicy(["http://[::1]:5000", "https://App.Example.org"])
    assert policy("http://[::1]:5000", HOST)  # fnmatch read "[::1]" as a character class
    assert not policy("http://::5000", HOST) and not policy("http://1:5000", HOST)
    assert not policy("http://[::1]:5001", HOST) and not policy("http://[::2]:5000", HOST)
    assert policy("https://app.example.ORG", HOST)  # exact: case-insensitive
    assert not policy("https://app.example.org.evil.test", HOST)


def test_a_lone_star_among_others_allows_every_origin():
    assert OriginPolicy(["https://a.test", "*"])("https://anything.test", HOST)
