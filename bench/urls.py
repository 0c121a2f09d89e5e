"""The site's URLs plus /bench/bare: a view that does nothing, behind the same middleware."""

from django.http import HttpResponse
from django.urls import include, path
from django.views.decorators.http import require_safe


@require_safe
def bare(request):
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [
    path("bench/bare", bare, name="bench-bare"),
    path("", include("meshlearn.urls")),
]

handler404 = "meshlearn.views.page_not_found"
handler500 = "meshlearn.views.server_error"
