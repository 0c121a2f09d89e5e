from django.urls import path

from . import views

app_name = "labs"
urlpatterns = [
    path("", views.lab_list, name="list"),
    path("decoder/", views.decoder, name="decoder"),
    path("<slug:slug>/", views.lab_detail, name="detail"),
    path("<slug:slug>/predict/", views.lab_predict, name="predict"),
    path("<slug:slug>/start/", views.lab_start, name="start"),
    path("<slug:slug>/press/", views.lab_press, name="press"),
    path("<slug:slug>/status/", views.lab_status, name="status"),
]
