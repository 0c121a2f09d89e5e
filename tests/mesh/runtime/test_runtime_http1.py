"""HTTP/1.1 codec and pool on real loopback sockets: keep-alive reuse, refusals, upstream errors."""

import asyncio

import pytest

from sandbox.mesh.config.model import Request, Response, UpstreamError
from sandbox.mesh.dataplane import http1
from sandbox.mesh.process import bind_listener


async def _server(handler):
    server = http1.HttpServer(handler)
    await server.start(bind_listener())
    return server


def test_keep_alive_reuses_one_connection_for_many_requests():
    async def body():
        peers = set()

        async def handle(request: Request, writer) -> Response:
            peers.add(writer.get_extra_info("peername"))
            return Response(200, {"x-path": request.path}, request.body[::-1])

        server = await _server(handle)
        pool = http1.ConnectionPool("127.0.0.1", server.port)
        try:
            responses = [await pool.request(Request("POST", f"/n{i}", body=b"abc"), "svc") for i in range(20)]
        finally:
            pool.close()
            await server.stop()
        return responses, peers, pool.open_count

    responses, peers, _ = asyncio.run(body())
    assert [r.headers["x-path"] for r in responses] == [f"/n{i}" for i in range(20)]
    assert all(r.body == b"cba" for r in responses)
    assert len(peers) == 1  # one TCP connection carried all twenty


async def _raw_exchange(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return answer


def test_chunked_request_bodies_are_refused_with_501_and_garbage_with_400():
    async def body():
        async def handle(request, writer):
            return Response(200)

        server = await _server(handle)
        try:
            chunked = await _raw_exchange(
                server.port, b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
            )
            garbage = await _raw_exchange(server.port, b"HELLO\r\n\r\n")
        finally:
            await server.stop()
        return chunked, garbage

    chunked, garbage = asyncio.run(body())
    assert chunked.startswith(b"HTTP/1.1 501 ")
    assert garbage.startswith(b"HTTP/1.1 400 ")


def test_connection_refused_is_an_upstream_connect_failure():
    async def body():
        sock = bind_listener()
        port = sock.getsockname()[1]
        sock.close()  # nothing listens there now
        pool = http1.ConnectionPool("127.0.0.1", port)
        with pytest.raises(UpstreamError) as caught:
            await pool.request(Request("GET", "/"), "svc")
        return caught.value

    error = asyncio.run(body())
    assert error.flag == "UF" and error.retry_on == "connect-failure"


def test_a_peer_that_closes_mid_exchange_is_a_reset():
    async def body():
        async def on_connection(reader, writer):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nabc")  # promises 10, sends 3
            writer.close()

        server = await asyncio.start_server(on_connection, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pool = http1.ConnectionPool("127.0.0.1", port)
        try:
            with pytest.raises(UpstreamError) as caught:
                await pool.request(Request("GET", "/"), "svc")
        finally:
            server.close()
        return caught.value

    error = asyncio.run(body())
    assert error.flag == "UC" and error.retry_on == "reset"


def test_hop_by_hop_headers_are_not_forwarded():
    encoded = http1.encode_request(
        Request("GET", "/", {"connection": "close", "keep-alive": "5", "x-keep": "yes", "host": "old"}), "new"
    )
    assert b"host: new\r\n" in encoded and b"x-keep: yes" in encoded
    assert b"keep-alive" not in encoded and b"connection" not in encoded and b"old" not in encoded


@pytest.mark.parametrize(
    "head",
    [
        b"content-length: 1_0\r\n",
        b"content-length: +10\r\n",
        b"content-length: 0x0a\r\n",
        b"content-length: 10\r\ncontent-length: 3\r\n",
        b"content-length: 10\r\ntransfer-encoding: chunked\r\n",
    ],
    ids=["underscore", "plus-sign", "hex", "two-lengths", "length-and-chunked"],
)
def test_an_ambiguous_request_length_is_refused_with_400_before_the_app_sees_it(head):
    async def body():
        seen = []

        async def handle(request, writer):
            seen.append(request)
            return Response(200)

        server = await _server(handle)
        try:
            answer = await _raw_exchange(server.port, b"POST / HTTP/1.1\r\nhost: x\r\n" + head + b"\r\n0123456789")
        finally:
            await server.stop()
        return answer, seen

    answer, seen = asyncio.run(body())
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert seen == []


def test_a_repeated_identical_content_length_is_accepted():
    async def body():
        async def handle(request, writer):
            return Response(200, body=request.body)

        server = await _server(handle)
        try:
            return await _raw_exchange(
                server.port,
                b"POST / HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 3\r\ncontent-length: 3\r\n\r\nabc",
            )
        finally:
            await server.stop()

    answer = asyncio.run(body())
    assert answer.startswith(b"HTTP/1.1 200 ") and answer.endswith(b"\r\n\r\nabc")


@pytest.mark.parametrize(
    "bad_body",
    [
        b"zz\r\nabc\r\n0\r\n\r\n",  # not hex
        b"-3\r\nabc\r\n0\r\n\r\n",
        b"3\r\nabcXX0\r\n\r\n",  # chunk data not followed by CRLF
        b"%x\r\n" % (http1.MAX_BODY_BYTES + 1),  # over the body cap
        b"1" * (http1.MAX_HEADER_BYTES * 5),  # a size line that never ends
        b"a\r\nabc",  # the peer closes inside a chunk
    ],
    ids=["not-hex", "negative", "no-crlf", "too-large", "endless-size-line", "closed-mid-chunk"],
)
def test_a_malformed_chunked_response_is_an_upstream_error_and_frees_the_connection(bad_body):
    async def body():
        closed_by_client = asyncio.Event()

        async def on_connection(reader, writer):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n" + bad_body)
            if bad_body.endswith(b"abc"):
                writer.close()
                closed_by_client.set()
                return
            await writer.drain()
            try:
                await reader.read()  # returns when the client gives the connection up ...
            except ConnectionResetError:
                pass  # ... or raises, when it closed with our bytes still unread (RST)
            closed_by_client.set()
            writer.close()

        server = await asyncio.start_server(on_connection, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pool = http1.ConnectionPool("127.0.0.1", port)
        try:
            with pytest.raises(UpstreamError) as caught:
                await asyncio.wait_for(pool.request(Request("POST", "/", body=b"x"), "svc"), 10)
            await asyncio.wait_for(closed_by_client.wait(), 10)
        finally:
            pool.close()
            server.close()
        return caught.value, pool

    error, pool = asyncio.run(body())
    assert error.flag == "UC" and "upstream protocol error" in error.reason, error.reason
    assert pool.open_count == 0 and pool.idle == []


@pytest.mark.parametrize("method, sent_twice", [("GET", True), ("POST", False)])
def test_only_an_idempotent_request_is_resent_when_a_kept_alive_connection_closes_without_answer(method, sent_twice):
    async def body():
        received = []

        async def on_connection(reader, writer):
            served_here = 0
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    break
                received.append(head.split(b" ", 2)[1])
                if served_here == 1:
                    break  # the second request on a connection: read it, then close without a byte
                served_here += 1
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
            writer.close()

        server = await asyncio.start_server(on_connection, "127.0.0.1", 0)
        pool = http1.ConnectionPool("127.0.0.1", server.sockets[0].getsockname()[1])
        try:
            first = await pool.request(Request(method, "/first"), "svc")
            try:
                second = (await pool.request(Request(method, "/second"), "svc")).status
            except UpstreamError as exc:
                second = exc.flag
        finally:
            pool.close()
            server.close()
        return first.status, second, received

    first, second, received = asyncio.run(body())
    assert first == 200
    if sent_twice:
        assert second == 200 and received == [b"/first", b"/second", b"/second"]
    else:
        assert second == "UC" and received == [b"/first", b"/second"]  # the app saw the POST once
