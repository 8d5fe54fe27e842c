"""Each class of hostile input of issue 15 gets a 4xx JSON answer and stores nothing.

Runs on SQLite and, with KATO_TEST_DATABASE_URL, on PostgreSQL (NUL characters and huge
symbols fail only there when unchecked). Rule 4 of the project: bad input gets a clear 4xx
JSON error in KATO's shapes (api.md §2.2), never a 500, and changes nothing stored.
What a WSGI test client cannot send (raw surrogate bytes on the wire, malformed chunked
bodies) is in tests/e2e/test_hostile_sockets.py.
"""
from __future__ import annotations

import gzip

import pytest
from sqlalchemy import text

from tests.support import TABLES


def snapshot(kato) -> dict:
    with kato.db.engine.connect() as conn:
        return {t: sorted(map(repr, conn.execute(text(f"SELECT * FROM {t}")))) for t in TABLES}


@pytest.fixture
def sid(new_session, client):
    session_id = new_session("hostile")
    client.post(f"/sessions/{session_id}/observe", json={"strings": ["a"]})
    return session_id


def refused(client, kato, method: str, path: str, status: int | tuple = 422, **kwargs):
    before = snapshot(kato)
    resp = client.open(path, method=method, **kwargs)
    statuses = status if isinstance(status, tuple) else (status,)
    assert resp.status_code in statuses, (resp.status_code, resp.data[:300])
    assert resp.is_json and isinstance(resp.get_json(), dict)
    assert snapshot(kato) == before, "a refused request changed the database"
    return resp.get_json()


def post_json(client, kato, path, raw: bytes | str, status=422, **headers):
    return refused(client, kato, "POST", path, status, data=raw,
                   headers={"Content-Type": "application/json", **headers})


DEEP = [b"[" * n + b"]" * n for n in (1025, 5000, 100_000)] + [b'{"a":' * 2000 + b"1" + b"}" * 2000]


@pytest.mark.parametrize("body", DEEP, ids=["1025", "5000", "100000", "objects-2000"])
@pytest.mark.parametrize("target", ["create", "observe", "sequence", "config"])
def test_json_nested_beyond_1024_levels(client, kato, sid, body, target):
    path = {"create": "/sessions", "observe": f"/sessions/{sid}/observe",
            "sequence": f"/sessions/{sid}/observe-sequence", "config": f"/sessions/{sid}/config"}[target]
    detail = post_json(client, kato, path, body)["detail"]
    assert detail[0]["type"] == "json_invalid"


BIG = ["99999999999999999999999", "9223372036854775808", "-9223372036854775809", "1" * 5000]


@pytest.mark.parametrize("number", BIG)
@pytest.mark.parametrize("field", ["ttl", "metadata", "config", "emotive", "nested"])
def test_integers_beyond_64_bits_anywhere(client, kato, sid, number, field):
    path, body = {
        "ttl": ("/sessions", '{"node_id": "n", "ttl_seconds": %s}'),
        "metadata": ("/sessions", '{"node_id": "n", "metadata": {"x": %s}}'),
        "config": (f"/sessions/{sid}/config", '{"config": {"max_pattern_length": %s}}'),
        "emotive": (f"/sessions/{sid}/observe", '{"strings": ["b"], "emotives": {"e": %s}}'),
        "nested": (f"/sessions/{sid}/observe", '{"strings": ["b"], "metadata": {"a": [[{"b": %s}]]}}'),
    }[field]
    detail = post_json(client, kato, path, body % number)["detail"]
    # 5,000 digits overflow even a double: the parser itself refuses the number.
    assert detail[0]["type"] == ("json_invalid" if len(number) > 400 else "int_too_big")


@pytest.mark.parametrize("query", ["ttl_seconds=99999999999999999999999", "ttl_seconds=9223372036854775807",
                                   "ttl_seconds=2592001", "ttl_seconds=abc", "ttl_seconds=1e400"])
def test_extend_ttl_out_of_range(client, kato, sid, query):
    detail = refused(client, kato, "POST", f"/sessions/{sid}/extend?{query}")["detail"]
    assert detail[0]["loc"] == ["query", "ttl_seconds"]


def test_ttl_above_the_configured_maximum(client, kato, sid):
    # KATO_MAX_SESSION_TTL (30 days by default) bounds create and extend alike.
    kato.config.max_session_ttl = 600
    detail = post_json(client, kato, "/sessions", '{"node_id": "n", "ttl_seconds": 601}')["detail"]
    assert detail[0] == {"type": "less_than_equal", "loc": ["body", "ttl_seconds"],
                         "msg": "Input should be less than or equal to 600", "input": 601, "ctx": {"le": 600}}
    refused(client, kato, "POST", f"/sessions/{sid}/extend?ttl_seconds=601")
    assert client.post("/sessions", json={"node_id": "n", "ttl_seconds": 600}).status_code == 200


@pytest.mark.parametrize("path", ["/stats?minutes=99999999999999999999", "/metrics/x?minutes=-99999999999999999999"])
def test_minutes_beyond_64_bits(client, kato, path):
    refused(client, kato, "GET", path)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400", "-1e400"])
@pytest.mark.parametrize("where", ["emotive", "vector", "metadata", "ttl"])
def test_nan_infinity_and_overflowing_floats(client, kato, sid, literal, where):
    path, body = {
        "emotive": (f"/sessions/{sid}/observe", '{"strings": ["b"], "emotives": {"e": %s}}'),
        "vector": (f"/sessions/{sid}/observe", '{"vectors": [[%s, 1.0]]}'),
        "metadata": (f"/sessions/{sid}/observe", '{"strings": ["b"], "metadata": {"m": %s}}'),
        "ttl": ("/sessions", '{"node_id": "n", "ttl_seconds": %s}'),
    }[where]
    assert post_json(client, kato, path, body % literal)["detail"][0]["type"] == "json_invalid"


def test_sums_of_huge_emotives_stay_finite(client, kato, sid):
    # 1e308 + 1e308 is infinity, which no JSON column holds (PostgreSQL refused it: a 500).
    detail = post_json(client, kato, f"/sessions/{sid}/observe", '{"strings": ["b"], "emotives": {"e": 1e308}}')
    assert "within ±1e+100" in detail["detail"][0]["msg"]
    for _ in range(3):
        assert client.post(f"/sessions/{sid}/observe", json={"strings": ["b"], "emotives": {"e": 1e100}}).status_code == 200
    assert client.post(f"/sessions/{sid}/learn").status_code == 200


@pytest.mark.parametrize("body", [b'{"node_id": "\\ud800"}', b'{"node_id": "\\udc00x"}',
                                  b'{"node_id": "\xed\xa0\x80"}', b'{"node_id": "a\xed\xbf\xbf"}'])
def test_surrogates_escaped_and_raw(client, kato, body):
    detail = post_json(client, kato, "/sessions", body)["detail"]
    assert detail[0]["type"] == "string_unicode" and "surrogate" in detail[0]["msg"]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le"])
def test_bodies_in_utf16_and_utf32(client, kato, sid, encoding):
    for path in ("/sessions", f"/sessions/{sid}/observe"):
        body = '{"node_id": "n", "strings": ["a"]}'.encode(encoding)
        assert post_json(client, kato, path, body)["detail"][0]["type"] in ("json_invalid", "string_unicode")
    # A declared non-UTF-8 charset is refused before the body is read.
    post_json(client, kato, "/sessions", '{"node_id": "n"}'.encode("utf-16"), 415,
              **{"Content-Type": "application/json; charset=utf-16"})


def test_a_byte_order_mark_is_refused(client, kato):
    post_json(client, kato, "/sessions", b'\xef\xbb\xbf{"node_id": "n"}')


@pytest.mark.parametrize("body, loc", [
    ('{"node_id": "a\\u0000b"}', ["body", "node_id"]),
    ('{"node_id": "n", "metadata": {"k\\u0000": 1}}', ["body", "metadata", "k\x00"]),
    ('{"node_id": "n", "config": {"stm_mode": "\\u0000"}}', ["body", "config", "stm_mode"]),
])
def test_nul_in_create(client, kato, body, loc):
    detail = post_json(client, kato, "/sessions", body)["detail"]
    assert detail[0]["type"] == "string_nul" and detail[0]["loc"] == loc


@pytest.mark.parametrize("body", ['{"strings": ["a\\u0000"]}', '{"strings": ["b"], "emotives": {"\\u0000": 1}}',
                                  '{"observations": [{"strings": ["\\u0000"]}]}'])
def test_nul_in_symbols_and_keys(client, kato, sid, body):
    path = f"/sessions/{sid}/observe-sequence" if "observations" in body else f"/sessions/{sid}/observe"
    assert post_json(client, kato, path, body)["detail"][0]["type"] == "string_nul"


@pytest.mark.parametrize("method, path", [
    ("GET", "/sessions/a%00b"), ("GET", "/sessions/a%00b/stm"), ("GET", "/sessions/a%00b/exists"),
    ("DELETE", "/sessions/a%00b"), ("POST", "/sessions/a%00b/learn"), ("GET", "/pattern/PTRN%7Cx?node_id=a%00"),
    ("GET", "/percept-data?node_id=%00"), ("POST", "/cache/invalidate?session_id=%00"),
])
def test_nul_in_session_ids_node_ids_and_queries(client, kato, method, path):
    detail = refused(client, kato, method, path)["detail"]
    assert detail[0]["type"] == "string_nul"


def test_nul_in_a_node_header(client, kato):
    detail = refused(client, kato, "GET", "/percept-data", headers={"X-Node-ID": "a\x00"})["detail"]
    assert detail[0]["loc"] == ["header", "X-Node-ID"]


@pytest.mark.parametrize("strings", [[1], [None], [["a"]], [{"a": 1}], [True], "abc"])
def test_non_string_symbols(client, kato, sid, strings):
    refused(client, kato, "POST", f"/sessions/{sid}/observe", json={"strings": strings})


def test_enormous_symbols_are_refused_before_the_stm(client, kato, sid):
    # Unchecked, a 6 kB symbol entered the STM and failed on PostgreSQL at learn time (its
    # index entry is too large): a 500 and a session that could never learn again.
    import secrets
    big = secrets.token_hex(3000)
    detail = refused(client, kato, "POST", f"/sessions/{sid}/observe", json={"strings": ["b", big]})["detail"]
    assert detail[0]["type"] == "string_too_long" and detail[0]["loc"] == ["body", "strings", 1]
    refused(client, kato, "POST", f"/sessions/{sid}/observe-sequence",
            json={"observations": [{"strings": ["ok"]}, {"strings": [big]}]})
    edge = "é" * 512  # exactly 1024 bytes: accepted, learned, served
    assert client.post(f"/sessions/{sid}/observe", json={"strings": [edge]}).status_code == 200
    assert client.post(f"/sessions/{sid}/learn").get_json()["pattern_name"].startswith("PTRN|")


def test_empty_symbols_are_legal_symbols(client, sid):
    # engine.md §1: "The empty string is a legal symbol" (KATO accepts it): stored and served.
    assert client.post(f"/sessions/{sid}/observe", json={"strings": ["", "b"]}).status_code == 200
    assert client.get(f"/sessions/{sid}/stm").get_json()["stm"] == [["a"], ["", "b"]]
    assert client.post(f"/sessions/{sid}/learn").status_code == 200


def test_stm_event_and_byte_bounds(client, kato, sid):
    # KATO_MAX_STM_EVENTS → 422 and KATO_MAX_STM_BYTES → 413, the STM left as it was.
    kato.config.max_stm_events = 3
    for symbol in ("b", "c"):
        assert client.post(f"/sessions/{sid}/observe", json={"strings": [symbol]}).status_code == 200
    detail = refused(client, kato, "POST", f"/sessions/{sid}/observe", json={"strings": ["d"]})["detail"]
    assert "at most 3" in detail[0]["msg"]
    refused(client, kato, "POST", f"/sessions/{sid}/observe-sequence",
            json={"observations": [{"strings": ["x"]}, {"strings": ["y"]}]})
    assert client.get(f"/sessions/{sid}/stm").get_json()["length"] == 3
    kato.config.max_stm_events = 10_000
    kato.config.max_stm_bytes = 2048
    refused(client, kato, "POST", f"/sessions/{sid}/observe", 413, json={"strings": ["z" * 1020, "y" * 1020]})
    # Learning empties the STM; observing works again.
    assert client.post(f"/sessions/{sid}/learn").status_code == 200
    assert client.post(f"/sessions/{sid}/observe", json={"strings": ["z" * 1000]}).status_code == 200


@pytest.mark.parametrize("raw", [b"\x1f\x8b\x08\x00broken", gzip.compress(b"[" * 2000 + b"]" * 2000),
                                 gzip.compress('{"node_id": "\\u0000"}'.encode())])
def test_gzip_bodies_get_the_same_checks(client, kato, raw):
    refused(client, kato, "POST", "/sessions", (400, 422), data=raw,
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})


@pytest.mark.parametrize("path", ["/sessions//stm", "/sessions//count", "/sessions/a%2F%2Fb/stm", "/metrics//x"])
def test_doubled_slashes_get_json_not_a_redirect_page(client, kato, path):
    # Found by the fuzz test: werkzeug merged "//" with an HTML 308 redirect.
    body = refused(client, kato, "GET", path, (404,))
    assert body == {"detail": "Not Found"}
