"""Loading the course is all or nothing: a bad practice file leaves the lessons unloaded too."""

import pytest
from django.core.management import CommandError, call_command

from lessons.models import Lesson
from quizzes.models import Question


def test_a_bad_practice_file_leaves_the_lessons_unloaded_too(tmp_path, settings, db):
    (tmp_path / "broken.yaml").write_text("lesson: why-service-mesh\nquestions:\n  - key: q\n", encoding="utf-8")
    settings.COURSE_CONTENT_DIRS = {**settings.COURSE_CONTENT_DIRS, "quizzes": tmp_path}
    with pytest.raises(CommandError, match=r"Nothing was loaded\. broken\.yaml: questions\[0\] \(q\): missing"):
        call_command("load_course")
    assert not Lesson.objects.exists() and not Question.objects.exists()
