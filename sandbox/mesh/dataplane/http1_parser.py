"""Sans-IO HTTP/1.1 message parsing, strict by RFC 9110/9112: bytes in, events out.

A parser holds the bytes of one direction of a connection. `feed()` adds what arrived, and
`next_event()` returns the next complete message (a Request or a Response, body included), NEED_DATA,
or for a request that asked for it EXPECT_CONTINUE, or raises ProtocolError with the status to answer.
No sockets, no clocks: the tests are tables of bytes in and decisions out.

A proxy is only safe when it and every server behind it split the byte stream into the same
messages, so anything two parsers could read differently is refused instead of guessed at:
obs-fold lines, whitespace before a colon, bare CR/LF/NUL, conflicting or malformed lengths, a
length beside a transfer coding, repeated Transfer-Encoding headers, invalid tokens and versions.
"""

from __future__ import annotations

import re
from typing import Final

from sandbox.mesh.config.model import Request, Response

MAX_HEADER_BYTES = 64 * 1024  # the whole head: request or status line and every header line
MAX_HEADERS = 100
MAX_BODY_BYTES = 8 * 1024 * 1024


class ProtocolError(Exception):
    """The peer sent something that is not HTTP/1.1 we can read; `status` is what to answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class _Event:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


NEED_DATA: Final = _Event("NEED_DATA")  # nothing complete yet: feed more bytes
EXPECT_CONTINUE: Final = _Event("EXPECT_CONTINUE")  # a request head asked for "100 Continue" before its body

# RFC 9110 5.6.2: token = 1*tchar
_TCHAR = rb"!#$%&'*+\-.^_`|~0-9A-Za-z"
_TOKEN_CHARS = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_REQUEST_LINE = re.compile(rb"([" + _TCHAR + rb"]+) ([\x21-\x7e]+) HTTP/1\.([01])")
_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) ([1-9][0-9][0-9])(?: [\t\x20-\x7e\x80-\xff]*)?")
# RFC 9112 5.1: field-line = field-name ":" OWS field-value OWS; values are VCHAR, obs-text, SP and HTAB.
_FIELD_LINE = re.compile(rb"([" + _TCHAR + rb"]+):([\t\x20-\x7e\x80-\xff]*)")
_VERSION = re.compile(rb"HTTP/[0-9]\.[0-9]")
_HEX = frozenset(b"0123456789abcdefABCDEF")


def _explain_field_line(line: bytes) -> str:
    """Why a header line failed the grammar, in words a log reader can act on."""
    if line[:1] in (b" ", b"\t"):
        return "obsolete line folding (a header line starting with whitespace)"
    if b"\r" in line:
        return "bare CR in a header line"
    if b"\n" in line:
        return "bare LF in a header line"
    if b"\x00" in line:
        return "NUL in a header line"
    name, colon, _ = line.partition(b":")
    if not colon:
        return "header line without a colon"
    if not name:
        return "empty header name"
    if name.rstrip(b" \t") != name:
        return "whitespace between a header name and its colon"
    if not _TOKEN_CHARS.issuperset(name):
        return f"invalid header name {name[:40]!r}"
    return "invalid character in a header value"


def _explain_request_line(line: bytes) -> str:
    parts = line.split(b" ")
    if len(parts) == 3 and parts[0] and _TOKEN_CHARS.issuperset(parts[0]) and parts[1]:
        if _VERSION.fullmatch(parts[2]):
            return f"unsupported HTTP version {parts[2].decode('ascii')}"
        return "invalid request target or version"
    if parts and parts[0] and not _TOKEN_CHARS.issuperset(parts[0]):
        return "invalid method"
    return "malformed request line"


def parse_fields(lines: list[bytes]) -> dict[str, str]:
    """Header lines -> lower-cased names to values; repeated list fields are joined with ", "."""
    if len(lines) > MAX_HEADERS:
        raise ProtocolError(f"more than {MAX_HEADERS} header lines", 431)
    headers: dict[str, str] = {}
    transfer_encodings = 0
    for line in lines:
        match = _FIELD_LINE.fullmatch(line)
        if match is None:
            raise ProtocolError(_explain_field_line(line))
        name = match[1].lower().decode("ascii")
        value = match[2].strip(b" \t").decode("latin-1")
        previous = headers.get(name)
        if previous is None:
            headers[name] = value
            continue
        if name == "content-length":
            if previous != value:
                # Two lengths let two parsers split the stream differently (request smuggling).
                raise ProtocolError("conflicting Content-Length headers")
        elif name == "host":
            raise ProtocolError("more than one Host header")
        else:
            headers[name] = f"{previous}, {value}"
        if name == "transfer-encoding":
            transfer_encodings += 1
    if transfer_encodings:
        raise ProtocolError("more than one Transfer-Encoding header")
    return headers


def _content_length(value: str) -> int:
    # int() would also take "+5", "1_0" or non-ASCII digits; RFC 9110 8.6 allows only 1*DIGIT.
    if not (value.isascii() and value.isdigit()):
        raise ProtocolError("bad Content-Length")
    if len(value) > 10 or int(value) > MAX_BODY_BYTES:
        raise ProtocolError("body too large", 413)
    return int(value)


def _is_chunked(value: str) -> bool:
    """Transfer-Encoding whose final coding is chunked; anything else cannot be framed by us."""
    return value.rsplit(",", 1)[-1].strip().lower() == "chunked"


class _Parser:
    """What both directions share: the buffer, the head split, and chunked bodies."""

    def __init__(self) -> None:
        self._buf = b""
        self._eof = False
        self._head: object | None = None  # the message whose head is parsed and whose body is pending
        self._body_mode = ""  # "length", "chunked" or "eof" while a body is pending
        self._body_left = 0
        self._body_start = 0
        self._chunks: list[bytes] = []
        self._chunk_total = 0
        self._chunk_state = "size"  # size, data, crlf, trailer

    def feed(self, data: bytes) -> None:
        self._buf = self._buf + data if self._buf else data

    def feed_eof(self) -> None:
        self._eof = True

    @property
    def buffered(self) -> int:
        return len(self._buf)

    @property
    def idle(self) -> bool:
        """Between messages with nothing buffered: a close here loses nothing."""
        return not self._buf and self._head is None

    def _split_head(self) -> list[bytes] | None:
        buf = self._buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > MAX_HEADER_BYTES:
                raise ProtocolError("message head too large", 431)
            if self._eof and buf:
                raise ProtocolError("connection closed inside the message head")
            self._check_partial_head(buf)
            return None
        if end + 4 > MAX_HEADER_BYTES:
            raise ProtocolError("message head too large", 431)
        self._buf = buf[end + 4 :]
        return buf[:end].split(b"\r\n")

    def _check_partial_head(self, buf: bytes) -> None:
        """Refuse at once what can never become a valid head, instead of waiting for more bytes."""

    # ------------------------------------------------------------------ bodies

    def _start_body(self, headers: dict[str, str], *, request: bool) -> None:
        te = headers.get("transfer-encoding")
        if te is not None:
            if "content-length" in headers:
                raise ProtocolError("both Content-Length and Transfer-Encoding")
            if not _is_chunked(te):
                raise ProtocolError(f"unsupported Transfer-Encoding {te[:40]!r}")
            if request:
                raise ProtocolError("chunked request bodies are not supported", 501)
            self._body_mode = "chunked"
            self._chunks, self._chunk_total, self._chunk_state = [], 0, "size"
            return
        length = headers.get("content-length")
        if length is not None:
            self._body_mode = "length"
            self._body_left = _content_length(length)
        elif request:
            self._body_mode = "length"
            self._body_left = 0
        else:
            self._body_mode = "eof"  # RFC 9112 6.3: a response without either is delimited by the close

    def _read_body(self) -> bytes | None:
        """The whole body once it is here, else None."""
        mode = self._body_mode
        if mode == "length":
            size = self._body_left
            if len(self._buf) < size:
                if self._eof:
                    raise ProtocolError("connection closed inside the message body")
                return None
            body, self._buf = self._buf[:size], self._buf[size:]
            return body
        if mode == "chunked":
            return self._read_chunked()
        if not self._eof:
            if len(self._buf) > MAX_BODY_BYTES:
                raise ProtocolError("body too large", 413)
            return None
        body, self._buf = self._buf, b""
        return body

    def _read_chunked(self) -> bytes | None:
        buf = self._buf
        pos = 0
        try:
            while True:
                state = self._chunk_state
                if state == "size":
                    end = buf.find(b"\r\n", pos)
                    if end < 0:
                        if len(buf) - pos > 1024:
                            raise ProtocolError("chunk size line too long")
                        return None
                    size_text = buf[pos:end].split(b";", 1)[0].strip(b" \t")
                    if not size_text or len(size_text) > 16 or not _HEX.issuperset(size_text):
                        raise ProtocolError("bad chunk size")
                    size = int(size_text, 16)
                    self._chunk_total += size
                    if self._chunk_total > MAX_BODY_BYTES:
                        raise ProtocolError("chunked body too large", 413)
                    pos = end + 2
                    if size == 0:
                        self._chunk_state, self._body_left = "trailer", 0
                    else:
                        self._chunk_state, self._body_left = "data", size
                elif state == "data":
                    size = self._body_left
                    if len(buf) - pos < size + 2:
                        return None
                    if buf[pos + size : pos + size + 2] != b"\r\n":
                        raise ProtocolError("chunk data not followed by CRLF")
                    self._chunks.append(buf[pos : pos + size])
                    pos += size + 2
                    self._chunk_state = "size"
                else:  # trailer section: lines until an empty one, capped like a head, then dropped
                    end = buf.find(b"\r\n", pos)
                    if end < 0:
                        if len(buf) - pos + self._body_left > MAX_HEADER_BYTES:
                            raise ProtocolError("chunked trailers too large", 431)
                        return None
                    if end == pos:
                        pos += 2
                        body = b"".join(self._chunks)
                        self._chunks = []
                        return body
                    self._body_left += end - pos + 2
                    if self._body_left > MAX_HEADER_BYTES:
                        raise ProtocolError("chunked trailers too large", 431)
                    pos = end + 2
        finally:
            self._buf = buf[pos:]

    def _body_or_eof_error(self, body: bytes | None) -> bytes | None:
        if body is None and self._eof and self._body_mode == "chunked":
            raise ProtocolError("connection closed inside a chunked body")
        return body


class RequestParser(_Parser):
    """The server side: requests from a client, one after another on a keep-alive connection."""

    def __init__(self) -> None:
        super().__init__()
        self._continue_sent = False

    def _check_partial_head(self, buf: bytes) -> None:
        # A TLS ClientHello or other binary noise fails here on its first bytes, not after a timeout.
        start = 0
        while buf.startswith(b"\r\n", start):
            start += 2
        space = buf.find(b" ", start)
        method = buf[start : space if space >= 0 else len(buf)]
        if method not in (b"", b"\r") and not _TOKEN_CHARS.issuperset(method):
            raise ProtocolError("invalid method")
        newline = buf.find(b"\n", start)
        if newline >= 0 and (newline == 0 or buf[newline - 1] != 0x0D):
            raise ProtocolError("bare LF in the message head")

    def next_event(self) -> Request | _Event:
        request = self._head
        if request is None:
            # RFC 9112 2.2: a server SHOULD ignore at least one empty line before a request line.
            while self._buf.startswith(b"\r\n"):
                self._buf = self._buf[2:]
            lines = self._split_head()
            if lines is None:
                return NEED_DATA
            request = self._start_request(lines)
            self._head = request
            self._continue_sent = False
        body = self._body_or_eof_error(self._read_body())
        if body is None:
            if request.headers.get("expect") == "100-continue" and not self._continue_sent:
                self._continue_sent = True
                return EXPECT_CONTINUE
            return NEED_DATA
        request.body = body
        request.headers.pop("expect", None)  # met here: a proxy must not ask the next hop again
        self._head = None
        return request

    def _start_request(self, lines: list[bytes]) -> Request:
        match = _REQUEST_LINE.fullmatch(lines[0])
        if match is None:
            raise ProtocolError(_explain_request_line(lines[0]))
        headers = parse_fields(lines[1:])
        minor = match[3]
        if minor == b"1" and "host" not in headers:
            raise ProtocolError("HTTP/1.1 request without a Host header")  # RFC 9112 3.2
        expect = headers.get("expect")
        if expect is not None:
            if minor == b"1" and expect.lower() == "100-continue":
                headers["expect"] = "100-continue"
            else:
                raise ProtocolError(f"cannot meet Expect: {expect[:40]}", 417)
        if minor == b"0" and headers.get("connection", "").lower() != "keep-alive":
            headers.setdefault("connection", "close")
        self._start_body(headers, request=True)
        return Request(method=match[1].decode("ascii"), path=match[2].decode("ascii"), headers=headers)


class ResponseParser(_Parser):
    """The client side: one response per request sent, in order; interim 1xx responses are skipped."""

    def __init__(self) -> None:
        super().__init__()
        self.head_request = False  # set before each response to a HEAD request: it has no body

    def next_event(self) -> Response | _Event:
        response = self._head
        while response is None:
            lines = self._split_head()
            if lines is None:
                return NEED_DATA
            response = self._start_response(lines)
        body = self._body_or_eof_error(self._read_body())
        if body is None:
            return NEED_DATA
        response.body = body
        self._head = None
        return response

    def _start_response(self, lines: list[bytes]) -> Response | None:
        match = _STATUS_LINE.fullmatch(lines[0])
        if match is None:
            raise ProtocolError("not an HTTP/1.x status line")
        headers = parse_fields(lines[1:])
        status = int(match[2])
        if status < 200:
            if status == 101:
                raise ProtocolError("protocol upgrades are not supported")
            return None  # 100 Continue and friends: the final response follows
        if self.head_request or status in (204, 304):
            self._body_mode, self._body_left = "length", 0
        else:
            self._start_body(headers, request=False)
            if self._body_mode == "eof":
                headers["connection"] = "close"  # the close ends this body, so the connection cannot be reused
        headers.pop("transfer-encoding", None)
        if match[1] == b"0" and headers.get("connection", "").lower() != "keep-alive":
            headers["connection"] = "close"
        response = Response(status=status, headers=headers)
        self._head = response
        return response
