"""service.http.protocol.OneWrite: an answer's head leaves with its body in one write, and only then."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from service.http.protocol import OneWrite

pytestmark = pytest.mark.unit


class Transport:
    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


def cycle(method: str = "GET", length: int | None = 5) -> Any:
    return SimpleNamespace(
        response_started=False,
        chunked_encoding=None if length is None else False,
        expected_content_length=length or 0,
        scope={"method": method},
    )


def answer(method: str = "GET", length: int | None = 5, body: bytes | None = b"hello") -> list[bytes]:
    transport, c = Transport(), cycle(method, length)
    w = OneWrite(transport, c)
    w.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # before the answer: written at once
    c.response_started = True
    w.write(b"HEAD\r\n\r\n")
    if body is not None:
        w.write(body)
    return transport.writes


def test_a_head_with_content_length_leaves_with_the_body() -> None:
    assert answer() == [b"HTTP/1.1 100 Continue\r\n\r\n", b"HEAD\r\n\r\nhello"]


@pytest.mark.parametrize(
    ("method", "length", "body"),
    [("HEAD", 5, None), ("GET", None, b"5\r\nhello\r\n"), ("GET", 0, None)],
    ids=["HEAD request", "a stream (no Content-Length)", "an empty body"],
)
def test_other_heads_are_written_at_once(method: str, length: int | None, body: bytes | None) -> None:
    assert answer(method, length, body)[1] == b"HEAD\r\n\r\n"


def test_a_waiting_head_goes_out_before_the_connection_closes() -> None:
    transport, c = Transport(), cycle()
    w = OneWrite(transport, c)
    c.response_started = True
    w.write(b"HEAD\r\n\r\n")
    assert transport.writes == []
    w.close()  # the application failed after starting its answer
    assert transport.writes == [b"HEAD\r\n\r\n"] and transport.closed and w.is_closing()
