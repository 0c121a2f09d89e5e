"""The client pool on a busy box: timed-out requests keep their connection, handshakes are shared, failed ones back off.

Real loopback sockets. A server that never answers the TLS ClientHello stands for an endpoint whose handshakes
do not complete in time (a saturated CPU); the waits are on conditions, with generous deadlines.
"""

import asyncio
import ssl

import pytest

from sandbox.mesh.config.model import Request, Response, UpstreamError
from sandbox.mesh.dataplane import http1
from sandbox.mesh.dataplane.handshake_backoff import HandshakeBackoff
from sandbox.mesh.process import bind_listener


async def _eventually(condition, seconds: float = 20.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the condition did not hold in time")


def _tls_client_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


async def _silent_server():
    """Accepts TCP connections and never says a byte: every TLS handshake with it stalls."""
    accepted = []

    async def on_connection(reader, writer):
        accepted.append(writer)
        await reader.read()  # until the client gives up
        writer.close()

    server = await asyncio.start_server(on_connection, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1], accepted


def test_a_request_that_times_out_leaves_its_connection_to_serve_the_next_one():
    async def body():
        peers = []
        answer_late = asyncio.Event()

        async def handle(request: Request, connection) -> Response:
            peers.append(connection.get_extra_info("peername"))
            if request.path == "/slow":
                await answer_late.wait()  # answers only once the caller has given up on it
            return Response(200, {"x-path": request.path})

        server = http1.HttpServer(handle)
        await server.start(bind_listener())
        pool = http1.ConnectionPool("127.0.0.1", server.port)
        pool.drain_timeout = 10.0  # as a sidecar's upstream pools have it
        try:
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.05):
                    await pool.request(Request("GET", "/slow"), "svc")
            answer_late.set()
            await _eventually(lambda: pool.idle, 20.0)  # the late answer was read: the connection is back
            after = await pool.request(Request("GET", "/after"), "svc")
        finally:
            pool.close()
            await server.stop()
        return peers, after

    peers, after = asyncio.run(body())
    assert after.status == 200 and after.headers["x-path"] == "/after"  # its own answer, not the late one
    assert len(set(peers)) == 1  # one TCP connection carried both: no new handshake after the timeout


def test_a_burst_at_an_endpoint_whose_handshake_stalls_shares_the_handshakes_in_flight():
    async def body():
        server, port, accepted = await _silent_server()
        pool = http1.ConnectionPool("127.0.0.1", port, ssl_context=_tls_client_context(), connect_timeout=1.0)
        try:
            results = await asyncio.gather(
                *(pool.request(Request("GET", "/"), "svc") for _ in range(20)), return_exceptions=True
            )
        finally:
            pool.close()
            server.close()
        return results, len(accepted)

    results, connections = asyncio.run(body())
    assert all(isinstance(r, UpstreamError) and r.flag == "UF" for r in results), results
    assert connections <= 2, connections  # 20 requests, and not a handshake each


def test_after_a_handshake_times_out_the_endpoint_backs_off_and_the_next_request_fails_at_once():
    async def body():
        server, port, accepted = await _silent_server()
        pool = http1.ConnectionPool("127.0.0.1", port, ssl_context=_tls_client_context(), connect_timeout=0.5)
        pool.backoff = HandshakeBackoff(base=60.0, cap=60.0)  # far longer than the test: no race with its end
        errors = []
        try:
            for _ in range(3):
                with pytest.raises(UpstreamError) as caught:
                    await pool.request(Request("GET", "/"), "svc")
                errors.append(caught.value)
        finally:
            pool.close()
            server.close()
        return errors, len(accepted)

    errors, connections = asyncio.run(body())
    assert [(e.flag, e.reason, e.retry_on) for e in errors] == [("UF", "connect timeout", "connect-failure")] * 3
    assert connections == 1  # the two after the first did not start a handshake of their own


def test_a_refused_endpoint_is_tried_again_and_serves_once_it_listens_again():
    # The backoff after a refusal is short (capped at 1 s): it must not keep a restarted endpoint away.
    async def body():
        sock = bind_listener()
        port = sock.getsockname()[1]
        sock.close()  # nothing listens there now
        pool = http1.ConnectionPool("127.0.0.1", port)
        with pytest.raises(UpstreamError) as first:
            await pool.request(Request("GET", "/"), "svc")

        async def handle(request: Request, connection) -> Response:
            return Response(200)

        server = http1.HttpServer(handle)
        await server.start(bind_listener(port))
        answers = []
        try:
            # Within the (at most 1 s) backoff a request may still fail fast; then one is served.
            for _ in range(200):
                try:
                    answers.append((await pool.request(Request("GET", "/"), "svc")).status)
                    break
                except UpstreamError as exc:
                    answers.append(exc.flag)
                    await asyncio.sleep(0.05)
        finally:
            pool.close()
            await server.stop()
        return first.value, answers

    first, answers = asyncio.run(body())
    assert first.flag == "UF" and "connection failure" in first.reason
    assert answers[-1] == 200 and set(answers[:-1]) <= {"UF"}, answers
