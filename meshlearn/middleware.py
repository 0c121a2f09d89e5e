"""Site-wide request and response rules: request body caps, form charsets, a Permissions-Policy header, and a
clear 503 when the database is busy."""

import codecs
import logging
from collections.abc import Callable

from django.conf import settings
from django.db import OperationalError
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string
from django.urls import Resolver404, resolve

logger = logging.getLogger(__name__)

# What SQLite and PostgreSQL say when a bounded wait for a lock ran out (not every OperationalError:
# a broken connection or a bad query should still surface as the error it is).
BUSY_MARKERS = (
    "database is locked",
    "database table is locked",
    "lock timeout",
    "canceling statement due to lock timeout",
)


def body_limit(max_bytes: int) -> Callable:
    """Cap this view's request body (checked by RequestBodyLimitMiddleware before anything reads it)."""

    def decorate(view: Callable) -> Callable:
        view.max_request_body = max_bytes
        return view

    return decorate


def request_body_limit(path: str, view_func: Callable | None) -> int:
    """The one place that says how large a request body may be: the view's @body_limit, else
    ADMIN_REQUEST_BODY_MAX_BYTES under /admin/ (its uploads check their own, smaller, limits), else
    REQUEST_BODY_MAX_BYTES. Used by RequestBodyLimitMiddleware and by the ASGI edge (meshlearn.edge)."""
    limit = getattr(view_func, "max_request_body", None)
    if limit is not None:
        return limit
    if path.startswith("/admin/"):
        return settings.ADMIN_REQUEST_BODY_MAX_BYTES
    return settings.REQUEST_BODY_MAX_BYTES


def request_body_limit_for_path(path: str) -> int:
    """The cap of the view this path resolves to (a path no view serves gets the site's cap)."""
    try:
        view_func = resolve(path).func
    except Resolver404:
        view_func = None
    return request_body_limit(path, view_func)


def body_too_large_message(limit: int, length: int | None = None) -> str:
    sent = f"{length:,} bytes" if length is not None else f"more than {limit:,} bytes"
    return f"This request is too large: {sent}, where this page accepts at most {limit:,}. Nothing was saved."


# Forms are parsed as text in their declared charset. Ours are UTF-8 pages, so browsers send UTF-8; a form
# declaring any other charset (UTF-16, say, which no ASCII-based parser reads) is refused with a 400 that
# says so, instead of failing in the parser with a 500.
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
FORM_CHARSETS = {"utf-8", "ascii"}


def form_charset_error(content_type: str) -> str | None:
    """What is wrong with a form's declared charset, in words a learner can act on; None when it is fine."""
    media_type, _, params = content_type.partition(";")
    if media_type.strip().lower() not in FORM_TYPES:
        return None
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() != "charset":
            continue
        charset = value.strip().strip('"')
        try:
            known = codecs.lookup(charset).name
        except LookupError:
            known = None
        if known not in FORM_CHARSETS:
            return (
                f"This form was sent in the character set {charset[:40]!r}, which this site does not read. "
                "Reload the page and send the form again (the page sends UTF-8)."
            )
    return None


class FormCharsetMiddleware:
    """Refuses, with a 400 and a message, a form whose declared charset is not UTF-8, before anything (the
    CSRF check, a login, a view) parses its fields."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        error = form_charset_error(request.META.get("CONTENT_TYPE", ""))
        if error is not None:
            return HttpResponse(error, status=400, content_type="text/plain; charset=utf-8")
        return self.get_response(request)


class RequestBodyLimitMiddleware:
    """Refuses a request whose body is larger than its view accepts, with 413 and a message, before the
    body is read or parsed (it sits before the CSRF middleware, which would parse a multipart body).

    The caps come from request_body_limit. Under ASGI the edge (meshlearn.edge) already refused a larger
    body before Django read it; this check still holds under WSGI and the test client."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func: Callable, view_args, view_kwargs) -> HttpResponse | None:
        limit = request_body_limit(request.path_info, view_func)
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return HttpResponse("The Content-Length header is not a number.", status=400, content_type="text/plain")
        if length <= limit:
            return None
        return HttpResponse(body_too_large_message(limit, length), status=413, content_type="text/plain")


class PermissionsPolicyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        response.setdefault("Permissions-Policy", settings.PERMISSIONS_POLICY)
        return response


class DatabaseBusyMiddleware:
    """A write that waited its bounded time for the database lock answers 503 with Retry-After and
    a page that says to try again, instead of a 500. Nothing was written: the transaction rolled back."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError) or not any(m in str(exception).lower() for m in BUSY_MARKERS):
            return None
        logger.warning("database busy on %s %s: %s", request.method, request.path, exception)
        body = render_to_string("503_busy.html")
        response = HttpResponse(body, status=503)
        response["Retry-After"] = "2"
        return response
