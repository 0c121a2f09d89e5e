"""Lab files load with the course, all or nothing; a bad file is refused with its name, the field and the reason."""

import shutil
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from labs.content_files import parse_lab_file
from labs.models import Lab
from lessons.models import Lesson
from meshlearn.content import ContentError
from quizzes.models import Question

SHIPPED = Path(__file__).resolve().parents[2] / "labs" / "content"
GOOD = (SHIPPED / "01-abort-fault.yaml").read_text(encoding="utf-8")


def test_the_course_loads_every_shipped_lab_with_its_prediction(course):
    assert Lab.objects.count() == len(list(SHIPPED.glob("*.yaml"))) >= 10
    lab = Lab.objects.get(slug="abort-fault")
    assert lab.lesson.slug == "why-service-mesh" and lab.topology == "pair"
    assert lab.prediction.options.filter(is_correct=True).count() == 1
    assert all(option.feedback for option in lab.prediction.options.all())
    assert lab.steps[1]["actions"][0]["command"] == {"action": "fail", "service": "b", "percent": 50, "status": 503}
    assert lab.checks[0]["when"][0] == "effective_success at entry <= 70%"
    assert "<code>via_upstream</code>" in lab.explanation_html


def test_predictions_stay_out_of_practice_sets(course):
    predictions = Question.objects.filter(lab__isnull=False)
    assert predictions.count() == Lab.objects.count()
    assert not predictions.filter(published=True).exists()


def test_loading_twice_changes_nothing(course):
    before = list(Lab.objects.values_list("slug", "updated_at"))
    call_command("load_course", verbosity=0)
    assert list(Lab.objects.values_list("slug", "updated_at")) == before


@pytest.mark.parametrize(
    "edit, problem",
    [
        (lambda t: t.replace("topology: pair", "topology: mesh"), "topology: must be one of pair, shop, got 'mesh'"),
        (
            lambda t: t.replace("lesson: why-service-mesh", "lesson: nowhere"),
            "lesson: 'nowhere' is not the slug of any lesson",
        ),
        (
            lambda t: t.replace("percent: 50", "percent: 150"),
            "steps[1].actions[0].command.percent: must be a number from 0 to 100, got 150",
        ),
        (
            lambda t: t.replace("action: fail", "action: explode"),
            "steps[1].actions[0].command.action: unknown action 'explode'",
        ),
        (
            lambda t: t.replace("service: b, percent", "service: z, percent"),
            "steps[1].actions[0].command.service: unknown service 'z' (one of a, b)",
        ),
        (
            lambda t: t.replace("effective_success at entry <= 70%", "effective_success at entry <= 70"),
            "checks[0].when[0]: effective_success is a rate: write a percentage",
        ),
        (
            lambda t: t.replace("actual_success at b <= 70%", "actual_success at a->c <= 70%"),
            "checks[0].when[1]: edge 'a->c' is not in the topology",
        ),
        (lambda t: t.replace("for: 5s", "for: forever"), "checks[0].for: a duration like 10s or 500ms"),
        # every check is caused by the learner: it needs a step with buttons to wait for
        (
            lambda t: t.replace("for: 5s", "for: 5s\n    after: 1"),
            "checks[0]: after: step 1 is not a step with buttons at or after the previous check's step",
        ),
        (
            lambda t: t.replace(
                "explanation: |", "  - {name: more, says: s, for: 2s, when: ['retries at a->b > 0']}\nexplanation: |"
            ),
            "checks[1]: no step with buttons is left for it",
        ),
        (lambda t: t.replace("for: 5s", "for: 5s\n    after: first"), "checks[0].after: must be the number of a step"),
        (lambda t: t.replace("      correct: true\n", ""), "prediction: has 0 correct options"),
        (lambda t: t.replace("title: ", "titel: "), "missing required key(s): title"),
        (lambda t: t + "\nsurprise: 1\n", "unknown key(s): surprise"),
        (lambda t: t.replace("goal: >", "goal: [", 1), "invalid YAML"),
    ],
)
def test_a_bad_lab_file_is_refused_with_the_field_and_the_reason(tmp_path, settings, edit, problem, course):
    shutil.copy(SHIPPED / "02-retries-hide-flaky.yaml", tmp_path)
    (tmp_path / "01-abort-fault.yaml").write_text(edit(GOOD), encoding="utf-8")
    settings.COURSE_CONTENT_DIRS = {**settings.COURSE_CONTENT_DIRS, "labs": tmp_path}
    Lab.objects.all().delete()
    with pytest.raises(CommandError) as caught:
        call_command("load_course", verbosity=0)
    message = str(caught.value)
    assert message.startswith("Nothing was loaded. 01-abort-fault.yaml: "), message
    assert problem in message
    assert not Lab.objects.exists()  # the good file next to it was not loaded either


def test_a_bad_lab_file_leaves_lessons_and_questions_untouched(tmp_path, settings, db):
    (tmp_path / "01-abort-fault.yaml").write_text(GOOD.replace("topology: pair", "topology: x"), encoding="utf-8")
    settings.COURSE_CONTENT_DIRS = {**settings.COURSE_CONTENT_DIRS, "labs": tmp_path}
    with pytest.raises(CommandError):
        call_command("load_course", verbosity=0)
    assert not Lesson.objects.exists() and not Question.objects.exists()


def test_file_name_must_say_order_and_slug(tmp_path):
    path = tmp_path / "abort.yaml"
    path.write_text(GOOD, encoding="utf-8")
    with pytest.raises(ContentError, match=r"^abort\.yaml: file name must be NN-slug\.yaml"):
        parse_lab_file(path)


def test_a_practice_question_using_a_labs_prediction_key_is_not_overwritten(tmp_path, settings, course):
    from labs.models import Lab as LabModel

    question = LabModel.objects.get(slug="abort-fault").prediction
    LabModel.objects.filter(slug="abort-fault").delete()  # as if the lab were new and the key a practice question's
    stem = question.stem
    with pytest.raises(CommandError, match=r"prediction key 'lab-abort-fault' is already a practice question's key"):
        call_command("load_course", verbosity=0)
    assert Question.objects.get(key="lab-abort-fault").stem == stem


def test_test_windows_are_shorter_and_the_shipped_ones_unchanged():
    path = SHIPPED / "02-retries-hide-flaky.yaml"
    assert parse_lab_file(path).checks[0]["for"] == 10
    assert parse_lab_file(path, window_scale=0.4).checks[0]["for"] == 4
