"""Practice sets as content files: the shipped course loads, reloads idempotently, bad files are refused."""

import pytest
from django.core.management import call_command

from labs.models import Lab
from lessons.models import Lesson
from meshlearn.content import ContentError
from quizzes.content_files import parse_question_file
from quizzes.models import Option, Question
from quizzes.services import questions_load_all

SEED_KEYS = {
    "seed-scenario-database-10x",
    "seed-purpose",
    "seed-sidecar-traffic-flow",
    "seed-transient-failure-retry",
    "seed-traffic-unencrypted",
    "seed-failure-handling",
}


def test_every_lesson_has_a_practice_set_of_at_least_five(course):
    for lesson in Lesson.objects.all():
        assert lesson.questions.count() >= 5, lesson.slug


def test_the_seeds_six_questions_are_there_each_with_one_right_answer_and_feedback_everywhere(course):
    seed = Question.objects.filter(key__in=SEED_KEYS).prefetch_related("options", "steps")
    assert {question.key for question in seed} == SEED_KEYS
    for question in seed:
        options = list(question.options.all())
        assert len(options) == 4 and sum(option.is_correct for option in options) == 1
        assert all(option.feedback for option in options)
        assert question.steps.count() >= 2 and question.quick_check and question.common_mistakes


def test_loading_again_changes_nothing(course):
    before = list(Option.objects.order_by("id").values_list("id", "public_id", "text", "is_correct"))
    report = questions_load_all()
    assert report.created == report.updated == 0
    assert list(Option.objects.order_by("id").values_list("id", "public_id", "text", "is_correct")) == before


BAD_FILES = [
    ("lesson: x\n", "missing required key(s): questions"),
    ("lesson: x\nquestions: []\n", "questions must be a non-empty list"),
    ("lesson: x\nquestions:\n  - key: q\n    stem: S\n", "questions[0] (q): missing required key(s): options"),
    (
        "lesson: x\nquestions:\n  - key: q\n    stem: S\n    options:\n      - text: a\n      - text: b\n",
        "questions[0] (q): has 0 correct options; a single-answer question needs exactly 1",
    ),
    (
        "lesson: x\nquestions:\n  - key: q\n    stem: Which is Option B?\n    options:\n      - text: a\n        correct: true\n      - text: b\n",
        "mentions an option letter",
    ),
    (
        "lesson: x\nquestions:\n  - key: q\n    stem: S\n    options:\n      - text: a\n        correct: yes please\n      - text: b\n",
        "questions[0] (q).options[0]: correct must be true or false",
    ),
    ("lesson: x\nquestions:\n  - key: q\n   stem: bad indent\n", "invalid YAML at line 4"),
]


@pytest.mark.parametrize("text, problem", BAD_FILES)
def test_a_malformed_question_file_names_the_file_and_the_problem(tmp_path, text, problem):
    path = tmp_path / "broken.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ContentError) as error:
        parse_question_file(path)
    assert str(error.value).startswith("broken.yaml: ") and problem in str(error.value)


def test_a_bad_question_file_loads_no_question_at_all(tmp_path, settings, db):
    call_command("load_course", verbosity=0)  # lessons and questions as shipped
    Lab.objects.all().delete()  # labs protect their prediction questions
    Question.objects.all().delete()
    (tmp_path / "a.yaml").write_text(
        "lesson: why-service-mesh\nquestions:\n  - key: fine\n    stem: S\n    options:\n"
        "      - text: a\n        correct: true\n      - text: b\n",
        encoding="utf-8",
    )
    (tmp_path / "b.yaml").write_text("lesson: why-service-mesh\nquestions:\n  - key: broken\n", encoding="utf-8")
    settings.COURSE_CONTENT_DIRS = {**settings.COURSE_CONTENT_DIRS, "quizzes": tmp_path}
    with pytest.raises(ContentError, match="b.yaml"):
        questions_load_all()
    assert not Question.objects.exists()


def test_a_question_naming_an_unknown_lesson_is_refused(tmp_path, settings, db):
    (tmp_path / "a.yaml").write_text(
        "lesson: no-such-lesson\nquestions:\n  - key: q\n    stem: S\n    options:\n"
        "      - text: a\n        correct: true\n      - text: b\n",
        encoding="utf-8",
    )
    settings.COURSE_CONTENT_DIRS = {**settings.COURSE_CONTENT_DIRS, "quizzes": tmp_path}
    with pytest.raises(ContentError, match=r"^a\.yaml: lesson 'no-such-lesson' is not the slug of any lesson$"):
        questions_load_all()
