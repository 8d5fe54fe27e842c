"""gunicorn's own error answers as JSON, like every other answer of the service.

Some requests never reach the app: gunicorn's HTTP parser refuses them first (a request
line or header it cannot parse, Content-Length together with chunked encoding, headers too
large) and writes a small HTML page. Clients of this API parse JSON, so the same statuses
go out with a `{"detail": …}` body instead (api.md §2.2 shape A). Installed from
gunicorn.conf.py in the master, before the workers fork.
"""
from __future__ import annotations

import json


def write_json_error(sock, status_int, reason, mesg):
    from gunicorn import util
    body = json.dumps({"detail": f"{reason}: {mesg}" if mesg else reason}).encode("utf-8")
    head = (f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode("latin-1")
    util.write_nonblock(sock, head + body)


def install() -> None:
    from gunicorn import util
    util.write_error = write_json_error
