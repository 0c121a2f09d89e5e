from django.urls import path

from . import live, views

app_name = "sandbox"
urlpatterns = [
    path("", views.index, name="index"),
    path("start/", views.experiment_start, name="start"),
    path("experiments/<int:experiment_id>/", views.experiment_detail, name="experiment"),
    path("experiments/<int:experiment_id>/status/", views.experiment_status, name="status"),
    path("experiments/<int:experiment_id>/live/", views.experiment_live, name="live"),
    path("experiments/<int:experiment_id>/stream/", live.experiment_stream, name="stream"),
    path("experiments/<int:experiment_id>/command/", views.experiment_command, name="command"),
    path("experiments/<int:experiment_id>/stop/", views.experiment_stop, name="stop"),
]
