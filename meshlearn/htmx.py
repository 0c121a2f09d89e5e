"""The request type of the site's views: django-htmx's middleware gives every request `htmx` (falsy unless the
request came from htmx), and this type says so, as django-htmx's own example project types it."""

from django.http import HttpRequest
from django_htmx.middleware import HtmxDetails


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails
