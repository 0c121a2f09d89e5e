from django.urls import path

from . import views

app_name = "quizzes"
urlpatterns = [
    path("", views.home, name="home"),
    path("lesson/<slug:slug>/", views.lesson_practice, name="lesson"),
]
