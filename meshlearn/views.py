"""Site-wide views: health, sign-up and the friendly error pages."""

import logging

from django.conf import settings
from django.contrib.auth import login
from django.contrib.auth.forms import UserCreationForm
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_safe

from . import health

logger = logging.getLogger(__name__)


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    checks = {"database": health.database_ok(), "redis": health.redis_ok()}
    failed = [name for name, (ok, _) in checks.items() if not ok]
    body = {"status": "ok" if not failed else "unavailable", "failed": failed}
    for name, (ok, detail) in checks.items():
        if not ok:
            logger.warning("healthz: %s is down: %s", name, detail)
    if settings.DEBUG:  # error texts name hosts and users: only for developers
        body["checks"] = {name: detail for name, (_, detail) in checks.items()}
    return JsonResponse(body, status=503 if failed else 200)


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("lessons:course")
    form = UserCreationForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        next_url = request.GET.get("next", "")
        if url_has_allowed_host_and_scheme(
            next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            return redirect(next_url)
        return redirect("lessons:course")
    return render(request, "registration/signup.html", {"form": form})


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    return render(request, "404.html", status=404)


def server_error(request: HttpRequest) -> HttpResponse:
    # No context processors that touch the database: the error may be the database.
    from django.template import loader

    return HttpResponse(loader.get_template("500.html").render(), status=500)
