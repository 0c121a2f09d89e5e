"""Request bodies are refused at the ASGI edge, before Django reads (and spools to disk) a byte of them:
against a real uvicorn, on raw sockets, so that what is sent and when the answer comes are the test's."""

import http.client
import re
import select
import socket

import pytest
from django.conf import settings

from tests.sandbox.live_support import read_all, read_head, uvicorn_server

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180)]


@pytest.fixture
def server(transactional_db, tmp_path):
    with uvicorn_server(tmp_path) as (port, _pid):
        yield port


def connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=30)


def test_a_declared_100_mb_body_is_refused_at_once_without_being_sent(server):
    sock = connect(server)
    # Only the head: if the server waited for the body, this read would time out (30 s).
    sock.sendall(
        b"POST /no-such-page/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 104857600\r\n\r\n0123456789"
    )
    status, headers, rest = read_head(sock)
    body = read_all(sock, rest).decode()
    sock.close()
    assert status == 413
    assert headers["content-type"].startswith("text/plain")
    assert "This request is too large: 104,857,600 bytes" in body
    assert f"at most {settings.REQUEST_BODY_MAX_BYTES:,}" in body and "Nothing was saved" in body


def test_a_declared_body_over_a_forms_own_cap_is_refused_on_that_cap(server):
    sock = connect(server)
    sock.sendall(b"POST /practice/attempts/1/answer/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 5000\r\n\r\n")
    status, _headers, rest = read_head(sock)
    body = read_all(sock, rest).decode()
    sock.close()
    assert status == 413 and "at most 4,096" in body


def test_a_chunked_900_kb_body_to_the_decoder_is_refused_and_read_no_further(server):
    sock = connect(server)
    sock.sendall(
        b"POST /labs/decoder/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"q=" + b"U" * (8 * 1024 - 2)
    sent = 0
    try:
        while sent < 900 * 1024:
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
            if select.select([sock], [], [], 0)[0]:
                break  # the server answered before the body was all sent: no point sending the rest
        else:
            sock.sendall(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # it stopped reading and closed; its answer is already in our buffer
    status, _headers, rest = read_head(sock)
    body = read_all(sock, rest).decode()
    sock.close()
    assert status == 413, body
    # Refused on the count of bytes received (no length was declared), not after reading it all.
    assert f"more than {settings.REQUEST_BODY_MAX_BYTES:,} bytes" in body


def log_in_over_http(port: int, *, chunked: bool) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", "/accounts/login/")
    page = connection.getresponse()
    html = page.read().decode()
    cookie = page.getheader("Set-Cookie").split(";")[0]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    form = f"csrfmiddlewaretoken={token}&username=ada&password=not-the-password".encode()
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "Cookie": cookie,
        "Referer": f"http://127.0.0.1:{port}/",
    }
    # http.client sends an iterable body chunked (no Content-Length), as some clients and proxies do.
    connection.request("POST", "/accounts/login/", body=iter([form]) if chunked else form, headers=headers)
    response = connection.getresponse()
    response.text = response.read().decode()
    connection.close()
    return response


@pytest.mark.parametrize("chunked", [False, True], ids=["with-length", "chunked"])
def test_an_ordinary_form_post_still_works(server, learner, chunked):
    response = log_in_over_http(server, chunked=chunked)
    # The form was read and checked: a wrong password, said on the page (not a 413, not a CSRF failure).
    assert response.status == 200
    assert "enter a correct username and password" in response.text
