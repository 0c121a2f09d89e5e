from django.urls import path

from . import views

app_name = "quizzes"
urlpatterns = [
    path("", views.home, name="home"),
    path("lesson/<slug:slug>/", views.lesson_practice, name="lesson"),
    path("start/", views.attempt_start, name="start"),
    path("attempts/<int:attempt_id>/", views.attempt_detail, name="attempt"),
    path("attempts/<int:attempt_id>/answer/", views.attempt_answer, name="answer"),
    path("attempts/<int:attempt_id>/questions/<int:question_id>/", views.response_detail, name="response"),
    path("history/", views.history, name="history"),
]
