"""The JSON client of deploy, replay and container-smoke against a real HTTP server on 127.0.0.1."""

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pillars.bento.client import OVERLOAD_RETRIES, Client
from pillars.core.errors import PillarsError


class Overloaded(BaseHTTPRequestHandler):
    """Answers 503 (as BentoML's batching does when it sheds load) `server.overloads` times, then echoes."""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.requests += 1
        status, answer = (503, b'{"error": "overloaded"}') if self.server.overloads > 0 else (200, body)
        self.server.overloads -= 1
        self.send_response(status)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *arguments: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Overloaded)
    server.requests, server.overloads = 0, 0
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


def url(server: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def test_shed_requests_are_retried_until_answered(server: ThreadingHTTPServer) -> None:
    server.overloads = 3
    assert Client(url(server)).post("/predict", {"records": [1]}) == {"records": [1]}
    assert server.requests == 4


def test_a_server_that_stays_overloaded_is_an_error(server: ThreadingHTTPServer) -> None:
    server.overloads = OVERLOAD_RETRIES + 1
    with pytest.raises(PillarsError, match="/predict answered 503"):
        Client(url(server)).post("/predict", json.dumps({}).encode())
    assert server.requests == OVERLOAD_RETRIES + 1
