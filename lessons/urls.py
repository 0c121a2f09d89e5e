from django.urls import path

from . import views

app_name = "lessons"
urlpatterns = [
    path("", views.course, name="course"),
    path("lessons/<slug:slug>/", views.lesson_detail, name="detail"),
    path("lessons/<slug:slug>/complete/", views.lesson_mark, name="mark"),
]
