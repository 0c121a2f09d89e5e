"""Site-wide request and response rules: request body caps, a Permissions-Policy header, and a clear
503 when the database is busy."""

import logging
from collections.abc import Callable

from django.conf import settings
from django.db import OperationalError
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

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


class RequestBodyLimitMiddleware:
    """Refuses a request whose body is larger than its view accepts, with 413 and a message, before the
    body is read or parsed (it sits before the CSRF middleware, which would parse a multipart body).

    A view's cap comes from @body_limit; every other view outside the admin gets REQUEST_BODY_MAX_BYTES.
    The admin keeps Django's own limits (its uploads state and check theirs)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_view(self, request: HttpRequest, view_func: Callable, view_args, view_kwargs) -> HttpResponse | None:
        limit = getattr(view_func, "max_request_body", None)
        if limit is None and not request.path.startswith("/admin/"):
            limit = settings.REQUEST_BODY_MAX_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return HttpResponse("The Content-Length header is not a number.", status=400, content_type="text/plain")
        if limit is None or length <= limit:
            return None
        message = f"This request is too large: {length:,} bytes, where this page accepts at most {limit:,}. Nothing was saved."
        return HttpResponse(message, status=413, content_type="text/plain")


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
