"""gzip both ways, with the request-size cap applied after inflating."""
from __future__ import annotations

import gzip
import io
import json
import zlib

import pytest

from kato_web import create_app
from kato_web.web import compression
from tests.conftest import make_config

CAP = 4096


@pytest.fixture
def capped(database_url):
    app = create_app(make_config(database_url, max_request_bytes=CAP))
    from tests.support import wipe

    wipe(app.extensions["kato"].db.engine)
    yield app.test_client()
    app.extensions["kato"].db.dispose()


def gz(data: bytes) -> bytes:
    return gzip.compress(data)


def post_gzip(client, path, body: bytes, encoding="gzip"):
    return client.post(path, data=body, headers={"Content-Encoding": encoding, "Content-Type": "application/json"})


def session(client, node="gz-node"):
    return client.post("/sessions", json={"node_id": node}).get_json()["session_id"]


def big_predictions(client):
    """Return a session whose predictions body is several kilobytes."""
    sid = session(client)
    for i in range(12):
        for event in (["a", "b"], [f"x{i}", "y"], [f"z{i}"]):
            client.post(f"/sessions/{sid}/observe", json={"strings": event})
        client.post(f"/sessions/{sid}/learn")
    client.post(f"/sessions/{sid}/observe", json={"strings": ["a", "b"]})
    return sid


def test_large_response_is_gzipped_when_accepted(client):
    sid = big_predictions(client)
    plain = client.get(f"/sessions/{sid}/predictions")
    assert plain.headers.get("Content-Encoding") is None
    assert len(plain.data) > 4 * 1024
    zipped = client.get(f"/sessions/{sid}/predictions", headers={"Accept-Encoding": "gzip, deflate"})
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in zipped.headers["Vary"]
    assert int(zipped.headers["Content-Length"]) == len(zipped.data) < len(plain.data) / 3
    assert json.loads(gzip.decompress(zipped.data)) == plain.get_json()


@pytest.mark.parametrize("accept", ["identity", "gzip;q=0", "deflate", "br"])
def test_no_gzip_unless_accepted(client, accept):
    sid = big_predictions(client)
    resp = client.get(f"/sessions/{sid}/predictions", headers={"Accept-Encoding": accept})
    assert resp.headers.get("Content-Encoding") is None
    assert resp.get_json()["count"] > 0


def test_wildcard_accept_encoding_gets_gzip(client):
    sid = big_predictions(client)
    resp = client.get(f"/sessions/{sid}/predictions", headers={"Accept-Encoding": "*"})
    assert resp.headers["Content-Encoding"] == "gzip"


def test_small_response_is_not_gzipped(client):
    resp = client.get("/health", headers={"Accept-Encoding": "gzip"})
    assert len(resp.data) <= 1024
    assert resp.headers.get("Content-Encoding") is None and "Vary" not in resp.headers


def test_gzipped_request_body_is_inflated(client):
    sid = session(client)
    for encoding in ("gzip", "GZIP", "x-gzip"):
        resp = post_gzip(client, f"/sessions/{sid}/observe", gz(json.dumps({"strings": ["b", "a"]}).encode()),
                         encoding)
        assert resp.status_code == 200, resp.get_json()
    assert client.get(f"/sessions/{sid}/stm").get_json()["stm"] == [["a", "b"]] * 3


def test_concatenated_gzip_members(client):
    sid = session(client)
    body = json.dumps({"strings": ["m1", "m2"]}).encode()
    resp = post_gzip(client, f"/sessions/{sid}/observe", gz(body[:10]) + gz(body[10:]))
    assert resp.status_code == 200, resp.get_json()
    assert client.get(f"/sessions/{sid}/stm").get_json()["stm"] == [["m1", "m2"]]


def _padded(size: int) -> bytes:
    body = json.dumps({"strings": ["pad"]}).encode()
    return body + b" " * (size - len(body))


def test_cap_applies_to_the_inflated_size(capped):
    sid = session(capped)
    # exactly at the cap is accepted; one byte more is refused, though it compresses to ~40 bytes
    assert post_gzip(capped, f"/sessions/{sid}/observe", gz(_padded(CAP))).status_code == 200
    resp = post_gzip(capped, f"/sessions/{sid}/observe", gz(_padded(CAP + 1)))
    assert resp.status_code == 413
    assert resp.get_json() == {"detail": "Request Entity Too Large"}
    # nothing of the refused body reached the session
    assert capped.get(f"/sessions/{sid}/stm").get_json()["length"] == 1


def test_bomb_is_refused_before_it_is_inflated():
    # 256 MiB of zeros compresses to ~256 KiB; the cap is 1 MiB.
    deflater = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = bytes(1 << 20)
    bomb = b"".join(deflater.compress(zeros) for _ in range(256)) + deflater.flush()

    class CountingStream(io.BytesIO):
        consumed = 0

        def read(self, size=-1):
            chunk = super().read(size)
            CountingStream.consumed += len(chunk)
            return chunk

    stream = CountingStream(bomb)
    with pytest.raises(compression._TooLarge):
        compression._inflate(stream, len(bomb), 1 << 20)
    # it stopped after the first chunk or two, long before the end of the compressed body
    assert CountingStream.consumed <= 2 * compression.READ_CHUNK < len(bomb)


def test_bomb_over_http_gets_413(capped):
    sid = session(capped)
    bomb = gz(b'{"strings": ["' + b"a" * (10 * CAP) + b'"]}')
    assert len(bomb) < CAP  # small on the wire, so only the inflated size can trip the cap
    resp = post_gzip(capped, f"/sessions/{sid}/observe", bomb)
    assert resp.status_code == 413 and resp.get_json() == {"detail": "Request Entity Too Large"}


@pytest.mark.parametrize("body", [b"not gzip at all", gz(b'{"strings": ["a"]}')[:-12]],
                         ids=["garbage", "truncated"])
def test_bad_gzip_is_400_json(client, body):
    sid = session(client)
    resp = post_gzip(client, f"/sessions/{sid}/observe", body)
    assert resp.status_code == 400
    assert resp.get_json() == {"detail": "Request body is not valid gzip"}
    assert resp.headers["X-Trace-ID"].startswith("kato-")  # a normal KATO error response


def test_accepts_gzip_parsing():
    accepts = compression._accepts_gzip
    assert accepts("gzip") and accepts("gzip, deflate, br") and accepts("br;q=1.0, gzip;q=0.8")
    assert accepts("*") and accepts("deflate, *;q=0.5")
    assert not accepts(None) and not accepts("") and not accepts("identity")
    assert not accepts("gzip;q=0") and not accepts("gzip;q=0.0, deflate") and not accepts("*;q=0")
    assert not accepts("gzip;q=0, *")  # an explicit refusal beats the wildcard


@pytest.mark.parametrize("level", [0, 1, 3, 6, 9])
def test_every_gzip_level_round_trips_and_high_levels_use_zlib(level):
    body = json.dumps([{"future": [["s%04d" % (i * 7 % 2000)]], "p": i / 7} for i in range(3000)]).encode()
    packed = compression.compressor(level)(body)
    assert gzip.decompress(packed) == body
    assert len(packed) < len(body) / 3
    if level > compression.ISAL_MAX_LEVEL:  # ISA-L has no such level: zlib's own output, byte for byte
        assert packed == gzip.compress(body, compresslevel=level, mtime=0)
    else:
        assert compression._isal_compress is not None  # pinned: the fast path is really taken
        assert packed == compression._isal_compress(body, level, mtime=0)


def test_the_configured_level_is_used_for_responses(database_url):
    app = create_app(make_config(database_url, gzip_level=9))
    try:
        client = app.test_client()
        sid = big_predictions(client)
        plain = client.get(f"/sessions/{sid}/predictions").data
        zipped = client.get(f"/sessions/{sid}/predictions", headers={"Accept-Encoding": "gzip"}).data
        assert zipped == gzip.compress(plain, compresslevel=9, mtime=0)
    finally:
        app.extensions["kato"].db.dispose()
