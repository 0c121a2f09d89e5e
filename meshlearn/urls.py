"""Top-level URL map."""

from django.contrib import admin
from django.urls import include, path

from . import views

urlpatterns = [
    path("", include("lessons.urls")),
    path("practice/", include("quizzes.urls")),
    path("sandbox/", include("sandbox.urls")),
    path("labs/", include("labs.urls")),
    path("healthz", views.healthz, name="healthz"),
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("admin/", admin.site.urls),
]

handler404 = "meshlearn.views.page_not_found"
handler500 = "meshlearn.views.server_error"
