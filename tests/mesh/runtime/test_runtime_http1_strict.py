"""Strict HTTP/1.1 on real sockets: what the parser refuses never reaches the handler, with its status line."""

import asyncio

import pytest

from sandbox.mesh.config.model import Request, Response
from sandbox.mesh.dataplane import http1
from sandbox.mesh.process import bind_listener


async def _recording_server():
    seen: list[Request] = []

    async def handle(request, connection):
        seen.append(request)
        return Response(200, body=request.body)

    server = http1.HttpServer(handle)
    await server.start(bind_listener())
    return server, seen


async def _exchange(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    try:
        return await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()


HOST = b"Host: b\r\n"
CASES = [
    (
        "obs-fold",
        b"POST / HTTP/1.1\r\n" + HOST + b"X-A: 1\r\n Content-Length: 5\r\n\r\nhello",
        b"HTTP/1.1 400 Bad Request\r\n",
    ),
    (
        "space-before-colon",
        b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length : 5\r\n\r\nhello",
        b"HTTP/1.1 400 Bad Request\r\n",
    ),
    (
        "two-transfer-encodings",
        b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        b"HTTP/1.1 400 Bad Request\r\n",
    ),
    ("bare-cr", b"GET / HTTP/1.1\r\n" + HOST + b"X-A: a\rb\r\n\r\n", b"HTTP/1.1 400 Bad Request\r\n"),
    ("bare-lf", b"GET / HTTP/1.1\r\n" + HOST + b"X-A: a\nb\r\n\r\n", b"HTTP/1.1 400 Bad Request\r\n"),
    ("nul", b"GET / HTTP/1.1\r\n" + HOST + b"X-A: a\x00b\r\n\r\n", b"HTTP/1.1 400 Bad Request\r\n"),
    ("empty-name", b"GET / HTTP/1.1\r\n" + HOST + b": a\r\n\r\n", b"HTTP/1.1 400 Bad Request\r\n"),
    ("space-in-name", b"GET / HTTP/1.1\r\n" + HOST + b"x a: 1\r\n\r\n", b"HTTP/1.1 400 Bad Request\r\n"),
    ("control-in-method", b"G\x01T / HTTP/1.1\r\n" + HOST + b"\r\n", b"HTTP/1.1 400 Bad Request\r\n"),
    ("http-2.0", b"GET / HTTP/2.0\r\n" + HOST + b"\r\n", b"HTTP/1.1 400 Bad Request\r\n"),
    ("http-1.2", b"GET / HTTP/1.2\r\n" + HOST + b"\r\n", b"HTTP/1.1 400 Bad Request\r\n"),
    (
        "head-over-64k",
        b"GET / HTTP/1.1\r\n" + HOST + b"X-A: " + b"a" * (64 * 1024) + b"\r\n\r\n",
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
    ),
    (
        "too-many-headers",
        b"GET / HTTP/1.1\r\n" + HOST + b"".join(b"X-%d: 1\r\n" % i for i in range(200)) + b"\r\n",
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n",
    ),
]


@pytest.mark.parametrize("data, status_line", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_request_refused_by_the_rfc_is_answered_and_never_reaches_the_handler(data, status_line):
    async def body():
        server, seen = await _recording_server()
        try:
            return await _exchange(server.port, data), seen
        finally:
            await server.stop()

    answer, seen = asyncio.run(body())
    assert answer.startswith(status_line), answer[:200]
    assert b"connection: close\r\n" in answer
    assert seen == []


def test_a_head_just_under_the_documented_limit_is_served():
    async def body():
        server, seen = await _recording_server()
        head = b"GET / HTTP/1.1\r\n" + HOST + b"Connection: close\r\n"
        filler = b"X-A: " + b"a" * (http1.MAX_HEADER_BYTES - len(head) - 9) + b"\r\n\r\n"
        try:
            return await _exchange(server.port, head + filler), seen
        finally:
            await server.stop()

    answer, seen = asyncio.run(body())
    assert answer.startswith(b"HTTP/1.1 200 OK\r\n") and len(seen) == 1


def test_expect_100_continue_gets_exactly_one_interim_answer_before_the_body_is_sent():
    async def body():
        server, seen = await _recording_server()
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        try:
            writer.write(
                b"POST / HTTP/1.1\r\nHost: b\r\nExpect: 100-continue\r\nContent-Length: 5\r\nConnection: close\r\n\r\n"
            )
            interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)  # sent before the body
            writer.write(b"hello")
            rest = await asyncio.wait_for(reader.read(), 10)
        finally:
            writer.close()
            await server.stop()
        return interim, rest, seen

    interim, rest, seen = asyncio.run(body())
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert rest.startswith(b"HTTP/1.1 200 OK\r\n") and rest.endswith(b"hello")
    assert b"100 Continue" not in rest
    assert "expect" not in seen[0].headers  # met by this hop, not asked again of the next


def test_a_proxy_answers_one_100_continue_even_when_its_upstream_sends_its_own():
    """An upstream's interim 100 is read past by the pool, so the client sees one 100 and the real answer,
    and the kept-alive upstream connection stays in step for the next request."""

    async def body():
        async def upstream(reader, writer):
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    break
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                data = await reader.readexactly(length)
                writer.write(
                    b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(data), data)
                )
            writer.close()

        origin = await asyncio.start_server(upstream, "127.0.0.1", 0)
        pool = http1.ConnectionPool("127.0.0.1", origin.sockets[0].getsockname()[1])

        async def forward(request, connection):
            request.headers["expect"] = "100-continue"  # as if the client's expectation leaked to the next hop
            return await pool.request(request, "up")

        proxy = http1.HttpServer(forward)
        await proxy.start(bind_listener())
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        try:
            answers = []
            for text in (b"first", b"second"):
                writer.write(
                    b"POST / HTTP/1.1\r\nHost: b\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(text)
                )
                answers.append(await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10))
                writer.write(text)
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
                answers.append(head + await reader.readexactly(len(text)))
        finally:
            writer.close()
            await proxy.stop()
            pool.close()
            origin.close()
        return answers

    answers = asyncio.run(body())
    assert answers[0] == answers[2] == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert answers[1].startswith(b"HTTP/1.1 200 OK\r\n") and answers[1].endswith(b"first")
    assert answers[3].startswith(b"HTTP/1.1 200 OK\r\n") and answers[3].endswith(b"second")


def test_pipelined_requests_are_answered_in_order_on_one_connection():
    async def body():
        async def handle(request, connection):
            await asyncio.sleep(0.01 if request.path == "/slow" else 0)
            return Response(200, body=request.path.encode())

        server = http1.HttpServer(handle)
        await server.start(bind_listener())
        try:
            return await _exchange(
                server.port,
                b"GET /slow HTTP/1.1\r\nHost: b\r\n\r\nGET /fast HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n",
            )
        finally:
            await server.stop()

    answer = asyncio.run(body())
    assert answer.index(b"/slow") < answer.index(b"/fast")
    assert answer.count(b"HTTP/1.1 200 OK") == 2
