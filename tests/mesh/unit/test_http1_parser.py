"""The sans-IO HTTP/1.1 parser as tables: bytes in, decision out (no sockets)."""

import pytest

from sandbox.mesh.config.model import Request, Response
from sandbox.mesh.dataplane.http1_parser import (
    EXPECT_CONTINUE,
    MAX_HEADER_BYTES,
    MAX_HEADERS,
    NEED_DATA,
    ProtocolError,
    RequestParser,
    ResponseParser,
)

OK = b"GET / HTTP/1.1\r\nHost: b\r\n"


def decide(data: bytes, *, eof: bool = False):
    """What a server decides after `data`: the request, NEED_DATA/EXPECT_CONTINUE, or (status, reason)."""
    parser = RequestParser()
    parser.feed(data)
    if eof:
        parser.feed_eof()
    try:
        return parser.next_event()
    except ProtocolError as exc:
        return exc.status, str(exc)


REFUSED = [
    # (id, bytes, status, words the reason must contain)
    ("obs-fold", OK + b"X-A: 1\r\n Content-Length: 5\r\n\r\nhello", 400, "folding"),
    ("obs-fold-tab", OK + b"X-A: 1\r\n\tmore\r\n\r\n", 400, "folding"),
    ("space-before-colon", b"POST / HTTP/1.1\r\nHost: b\r\nContent-Length : 5\r\n\r\nhello", 400, "whitespace"),
    ("tab-before-colon", OK + b"X-A\t: 1\r\n\r\n", 400, "whitespace"),
    (
        "two-transfer-encodings",
        (b"POST / HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n"),
        400,
        "Transfer-Encoding",
    ),
    ("bare-cr-in-value", OK + b"X-A: 1\r2\r\n\r\n", 400, "bare CR"),
    ("bare-lf-in-value", OK + b"X-A: 1\n2\r\n\r\n", 400, "bare LF"),
    ("nul-in-value", OK + b"X-A: 1\x002\r\n\r\n", 400, "NUL"),
    ("del-in-value", OK + b"X-A: 1\x7f2\r\n\r\n", 400, "invalid character"),
    ("empty-name", OK + b": 1\r\n\r\n", 400, "empty header name"),
    ("space-in-name", OK + b"x a: 1\r\n\r\n", 400, "invalid header name"),
    ("no-colon", OK + b"x-a 1\r\n\r\n", 400, "without a colon"),
    ("control-in-method", b"G\x01T / HTTP/1.1\r\nHost: b\r\n\r\n", 400, "invalid method"),
    ("http-2.0", b"GET / HTTP/2.0\r\nHost: b\r\n\r\n", 400, "unsupported HTTP version"),
    ("http-0.9", b"GET / HTTP/0.9\r\nHost: b\r\n\r\n", 400, "unsupported HTTP version"),
    ("http-1.2", b"GET / HTTP/1.2\r\nHost: b\r\n\r\n", 400, "unsupported HTTP version"),
    ("lower-case-version", b"GET / http/1.1\r\nHost: b\r\n\r\n", 400, "invalid request target or version"),
    ("two-spaces", b"GET  / HTTP/1.1\r\nHost: b\r\n\r\n", 400, "request line"),
    ("no-version", b"GET /\r\nHost: b\r\n\r\n", 400, "request line"),
    ("garbage", b"HELLO\r\n\r\n", 400, "request line"),
    ("no-host", b"GET / HTTP/1.1\r\nX-A: 1\r\n\r\n", 400, "Host"),
    ("two-hosts", OK + b"Host: c\r\n\r\n", 400, "Host"),
    ("length-underscore", b"POST / HTTP/1.1\r\nHost: b\r\nContent-Length: 1_0\r\n\r\n", 400, "Content-Length"),
    ("length-plus", b"POST / HTTP/1.1\r\nHost: b\r\nContent-Length: +10\r\n\r\n", 400, "Content-Length"),
    ("length-list", b"POST / HTTP/1.1\r\nHost: b\r\nContent-Length: 3, 3\r\n\r\n", 400, "Content-Length"),
    (
        "two-lengths",
        b"POST / HTTP/1.1\r\nHost: b\r\nContent-Length: 10\r\nContent-Length: 3\r\n\r\n",
        400,
        "conflicting",
    ),
    (
        "length-and-chunked",
        b"POST / HTTP/1.1\r\nHost: b\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        400,
        "both",
    ),
    ("gzip-coding", b"POST / HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: gzip\r\n\r\n", 400, "Transfer-Encoding"),
    (
        "chunked-request",
        b"POST / HTTP/1.1\r\nHost: b\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        501,
        "chunked",
    ),
    ("body-over-cap", b"POST / HTTP/1.1\r\nHost: b\r\nContent-Length: 99999999999\r\n\r\n", 413, "too large"),
    ("unknown-expectation", OK + b"Expect: teapot\r\n\r\n", 417, "Expect"),
    ("head-too-large", OK + b"X-A: " + b"a" * MAX_HEADER_BYTES + b"\r\n\r\n", 431, "too large"),
    ("too-many-headers", OK + b"".join(b"X-%d: 1\r\n" % i for i in range(MAX_HEADERS)) + b"\r\n", 431, "header lines"),
]


@pytest.mark.parametrize("data, status, words", [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED])
def test_a_request_the_rfc_does_not_allow_is_refused_with_its_status_and_reason(data, status, words):
    decision = decide(data)
    assert decision[0] == status and words in decision[1], decision


PARTIAL_REFUSED = [
    # Refused on the first bytes, without waiting for a head that will never come.
    ("tls-client-hello", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "invalid method"),
    ("control-in-method", b"G\x01T /", "invalid method"),
    ("bare-lf-line-ending", b"GET / HTTP/1.1\nHost: b\n", "bare LF"),
]


@pytest.mark.parametrize("data, words", [r[1:] for r in PARTIAL_REFUSED], ids=[r[0] for r in PARTIAL_REFUSED])
def test_an_impossible_head_is_refused_before_it_is_complete(data, words):
    decision = decide(data)
    assert decision[0] == 400 and words in decision[1], decision


def test_the_head_limit_is_64_kib_as_documented():
    filler = b"X-A: " + b"a" * (MAX_HEADER_BYTES - len(OK) - 7 - 2) + b"\r\n"
    at_limit = OK + filler + b"\r\n"
    assert len(at_limit) == MAX_HEADER_BYTES == 64 * 1024
    assert isinstance(decide(at_limit), Request)
    assert decide(OK + b"X" + filler + b"\r\n")[0] == 431
    # A head that has not ended within the limit is refused without waiting for the rest.
    assert decide(OK + b"X-A: " + b"a" * MAX_HEADER_BYTES)[0] == 431


def test_up_to_the_header_count_limit_is_accepted():
    headers = b"".join(b"X-%d: 1\r\n" % i for i in range(MAX_HEADERS - 1))
    assert isinstance(decide(OK + headers + b"\r\n"), Request)


ACCEPTED = [
    # (id, bytes, method, path, headers subset, body)
    ("simple", OK + b"\r\n", "GET", "/", {"host": "b"}, b""),
    ("ows-trimmed", OK + b"X-A: \t spaced \t\r\n\r\n", "GET", "/", {"x-a": "spaced"}, b""),
    ("empty-value", OK + b"X-A:\r\n\r\n", "GET", "/", {"x-a": ""}, b""),
    ("obs-text-value", OK + b"X-A: caf\xe9\r\n\r\n", "GET", "/", {"x-a": "caf\xe9"}, b""),
    (
        "names-lower-cased",
        b"GET /x?q=1 HTTP/1.1\r\nHOST: b\r\nX-Mixed-Case: v\r\n\r\n",
        "GET",
        "/x?q=1",
        {"x-mixed-case": "v"},
        b"",
    ),
    ("repeated-list-field-joined", OK + b"Accept: a\r\nAccept: b\r\n\r\n", "GET", "/", {"accept": "a, b"}, b""),
    (
        "same-length-twice",
        b"POST / HTTP/1.1\r\nHost: b\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
        "POST",
        "/",
        {"content-length": "3"},
        b"abc",
    ),
    ("leading-empty-line", b"\r\n" + OK + b"\r\n", "GET", "/", {}, b""),
    ("http-1.0-no-host", b"GET / HTTP/1.0\r\n\r\n", "GET", "/", {"connection": "close"}, b""),
    (
        "http-1.0-keep-alive",
        b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
        "GET",
        "/",
        {"connection": "keep-alive"},
        b"",
    ),
    ("token-method", b"M-SEARCH * HTTP/1.1\r\nHost: b\r\n\r\n", "M-SEARCH", "*", {}, b""),
]


@pytest.mark.parametrize("data, method, path, headers, body", [r[1:] for r in ACCEPTED], ids=[r[0] for r in ACCEPTED])
def test_a_valid_request_is_read_as_sent(data, method, path, headers, body):
    request = decide(data)
    assert isinstance(request, Request), request
    assert (request.method, request.path, request.body) == (method, path, body)
    assert headers.items() <= request.headers.items()


def test_a_request_split_anywhere_reads_the_same_and_pipelined_requests_come_in_order():
    stream = b"POST /one HTTP/1.1\r\nHost: b\r\nContent-Length: 5\r\n\r\nhelloGET /two HTTP/1.1\r\nHost: b\r\n\r\n"
    for cut in range(1, len(stream)):
        parser = RequestParser()
        seen = []
        for piece in (stream[:cut], stream[cut:]):
            parser.feed(piece)
            while (event := parser.next_event()) is not NEED_DATA:
                seen.append((event.method, event.path, event.body))
        assert seen == [("POST", "/one", b"hello"), ("GET", "/two", b"")], cut


def test_expect_100_continue_is_signalled_once_and_not_forwarded():
    parser = RequestParser()
    parser.feed(b"POST / HTTP/1.1\r\nHost: b\r\nExpect: 100-Continue\r\nContent-Length: 5\r\n\r\n")
    assert parser.next_event() is EXPECT_CONTINUE
    assert parser.next_event() is NEED_DATA  # not a second time
    parser.feed(b"hel")
    assert parser.next_event() is NEED_DATA
    parser.feed(b"lo")
    request = parser.next_event()
    assert request.body == b"hello" and "expect" not in request.headers


def test_expect_100_continue_with_the_body_already_here_needs_no_interim_answer():
    parser = RequestParser()
    parser.feed(b"POST / HTTP/1.1\r\nHost: b\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nhello")
    assert parser.next_event().body == b"hello"


def test_a_close_inside_a_request_is_an_error_and_between_requests_is_not():
    assert decide(OK, eof=True)[0] == 400
    assert decide(b"POST / HTTP/1.1\r\nHost: b\r\nContent-Length: 5\r\n\r\nhel", eof=True)[0] == 400
    parser = RequestParser()
    parser.feed_eof()
    assert parser.next_event() is NEED_DATA and parser.idle


# --------------------------------------------------------------------------- responses


def read_response(data: bytes, *, eof: bool = False, head_request: bool = False):
    parser = ResponseParser()
    parser.head_request = head_request
    parser.feed(data)
    if eof:
        parser.feed_eof()
    try:
        return parser.next_event()
    except ProtocolError as exc:
        return exc.status, str(exc)


RESPONSES = [
    ("length", b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", False, False, 200, b"abc"),
    ("no-reason", b"HTTP/1.1 204 \r\n\r\n", False, False, 204, b""),
    (
        "chunked",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;ext=1\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\n",
        False,
        False,
        200,
        b"abcde",
    ),
    (
        "interim-skipped",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        False,
        False,
        200,
        b"ok",
    ),
    ("head", b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n", False, True, 200, b""),
    ("until-close", b"HTTP/1.1 200 OK\r\n\r\nall of it", True, False, 200, b"all of it"),
]


@pytest.mark.parametrize("data, eof, head, status, body", [r[1:] for r in RESPONSES], ids=[r[0] for r in RESPONSES])
def test_a_valid_response_is_read_as_sent(data, eof, head, status, body):
    response = read_response(data, eof=eof, head_request=head)
    assert isinstance(response, Response), response
    assert (response.status, response.body) == (status, body)
    assert "transfer-encoding" not in response.headers


BAD_RESPONSES = [
    ("not-hex", b"zz\r\nabc\r\n0\r\n\r\n", "bad chunk size"),
    ("negative", b"-3\r\nabc\r\n0\r\n\r\n", "bad chunk size"),
    ("no-crlf-after-data", b"3\r\nabcXX0\r\n\r\n", "not followed by CRLF"),
    ("endless-size-line", b"1" * 5000, "too long"),
    ("trailers-too-large", b"0\r\n" + b"T: x\r\n" * 20000, "trailers too large"),
]


@pytest.mark.parametrize("body, words", [r[1:] for r in BAD_RESPONSES], ids=[r[0] for r in BAD_RESPONSES])
def test_a_malformed_chunked_response_is_a_protocol_error(body, words):
    decision = read_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body)
    assert decision[0] in (400, 431) and words in decision[1], decision


def test_a_response_cut_short_is_an_error_once_the_connection_closes():
    assert read_response(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc") is NEED_DATA
    assert read_response(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", eof=True)[0] == 400
    assert read_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\nabc", eof=True)[0] == 400


def test_a_response_with_folded_or_smuggling_headers_is_refused():
    assert read_response(b"HTTP/1.1 200 OK\r\nX: 1\r\n Content-Length: 5\r\n\r\n")[0] == 400
    assert read_response(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n")[0] == 400
    assert read_response(b"HTTP/2 200 OK\r\n\r\n")[0] == 400
