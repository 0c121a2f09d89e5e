"""Aiken files are imported question by question, as Moodle does: every good question comes in and each
bad one is reported with its line, in one report. The file below has the error shapes of Moodle's own
fixture (question/format/aiken/tests/fixtures/aiken_errors.txt), in our words."""

import time

import pytest
from celery.contrib.testing.worker import start_worker
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils.html import escape

from lessons.rendering import render_markdown
from meshlearn.celery import app
from meshlearn.content import ContentError
from quizzes.formats.aiken import read_aiken
from quizzes.importing import questions_import
from quizzes.models import Question, QuestionImport
from tests.factories import LessonFactory

WITH_ERRORS = """\
A sidecar question with too few options
A) Only this one
ANSWER: A

A) Options with no question above them

ANSWER: Options with no question above them

Which proxy carries a service's traffic?
A) The sidecar
B) The database
ANSWER: A

A question started but never finished
A) Retries, perhaps
B) Timeouts, perhaps

Which layer turns a transient 503 into a success?
A)Timeouts (no space)
B)Retries (no space)
ANSWER: B

Which characters does a mesh keep, such as > < &?
A) Kept (< > &)
B) Lost (< > &)
ANSWER: A
"""

# Every bad question of WITH_ERRORS: its first line and what the instructor reads.
BAD = [
    (1, "question 'A sidecar question with too few options' has 1 option; at least 2 are needed"),
    (5, "option 'A) Options with no question above them' has no question before it"),
    (7, "ANSWER line with no question before it"),
    (14, "question 'A question started but never finished' has no 'ANSWER: <letter>' line"),
]
GOOD_STEMS = [
    "Which proxy carries a service's traffic?",
    "Which layer turns a transient 503 into a success?",
    "Which characters does a mesh keep, such as > < &?",
]


def shown(markdown: str) -> str:
    """What a learner sees of a stored text (Aiken is plain text, stored as escaped Markdown)."""
    html = render_markdown(markdown)
    return html.removeprefix("<p>").removesuffix("</p>").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def test_the_reader_keeps_every_good_question_and_names_every_bad_one_by_line():
    parsed = read_aiken(WITH_ERRORS)
    assert [shown(q.stem) for q in parsed.questions] == GOOD_STEMS
    assert [item.line for item in parsed.malformed] == [line for line, _ in BAD]
    assert all(reason in item.reason for (_, reason), item in zip(BAD, parsed.malformed))
    no_space = parsed.questions[1]
    assert [(shown(o.text), o.correct) for o in no_space.options] == [
        ("Timeouts (no space)", False),
        ("Retries (no space)", True),
    ]
    assert [shown(o.text) for o in parsed.questions[2].options] == ["Kept (< > &)", "Lost (< > &)"]


@pytest.mark.parametrize(
    "option_lines",
    [
        ["A)one", "B)two"],
        ["A.one", "B.two"],
        ["A) one", "B) two"],
        ["A. one", "B. two"],
        ["A)\tone", "B.two"],
    ],
    ids=["paren-no-space", "dot-no-space", "paren-space", "dot-space", "tab-and-mixed"],
)
def test_options_read_with_or_without_a_space_after_the_letter(option_lines):
    parsed = read_aiken("\n".join(["Which one?", *option_lines, "ANSWER: B", ""]))
    assert parsed.malformed == []
    (question,) = parsed.questions
    assert [(o.text, o.correct) for o in question.options] == [("one", False), ("two", True)]


GOOD = "Fine?\nA. yes\nB. no\nANSWER: A\n\n"  # five lines: the bad question starts on line 6
LAST = "\n\nLast?\nA. yes\nB. no\nANSWER: B\n"


@pytest.mark.parametrize(
    ("bad", "line", "reason"),
    [
        ("Which?\nA. one\nB. two", 6, "question 'Which?' has no 'ANSWER: <letter>' line"),
        ("Which?\nA. one\nB. two\nANSWER: D", 9, "ANSWER: D names no option; the options are A–B"),
        ("Which?\nA. one\nANSWER: A", 6, "question 'Which?' has 1 option; at least 2 are needed"),
        ("Which?\nA. one\nC. two\nANSWER: A", 8, "option letter C out of sequence; expected B"),
        ("Which?\nA. one\nB. two\nANSWER: A\nNext?", 10, "text after the ANSWER line"),
        ("Which?\nA. one\nB. two\nANSWER: AB", 9, "ANSWER must name one option letter"),
        ("Which?\nA. one\nand more\nB. two\nANSWER: A", 8, "expected option 'B.' or 'ANSWER: <letter>'"),
        ("ANSWER: A", 6, "ANSWER line with no question before it"),
        ("A) one\nB) two\nANSWER: A", 6, "option 'A) one' has no question before it"),
        ("A) alone", 6, "option 'A) alone' has no question before it"),
    ],
)
def test_a_bad_question_between_good_ones_is_reported_and_its_neighbours_kept(bad, line, reason):
    parsed = read_aiken(GOOD + bad + LAST)
    assert [q.stem for q in parsed.questions] == ["Fine?", "Last?"]
    assert [item.line for item in parsed.malformed] == [line]
    assert reason in parsed.malformed[0].reason


def test_a_stem_line_that_reads_like_a_later_option_without_a_space_stays_in_the_stem():
    parsed = read_aiken("Which rule?\nI.e. the one for retries\nA)one\nB)three\nANSWER: B\n")
    assert parsed.malformed == []
    (question,) = parsed.questions
    assert shown(question.stem) == "Which rule?<br>\nI.e. the one for retries"
    assert [(o.text, o.correct) for o in question.options] == [("one", False), ("three", True)]


def test_such_a_stem_is_exported_and_read_back_the_same():
    from quizzes.formats.aiken import export_aiken, parse_aiken
    from quizzes.formats.types import OptionData, QuestionData

    question = QuestionData(
        "k", "Which rule?\nI.e. the one for retries", [OptionData("one"), OptionData("three", True)]
    )
    (back,) = parse_aiken(export_aiken([question]))
    assert shown(back.stem) == "Which rule?<br>\nI.e. the one for retries"
    assert [(o.text, o.correct) for o in back.options] == [("one", False), ("three", True)]


def test_a_stem_that_only_begins_like_an_option_is_still_a_question():
    parsed = read_aiken("A. Smith's retry rule: how many tries?\nA. one\nB. three\nANSWER: B\n")
    assert parsed.malformed == []
    assert [o.correct for o in parsed.questions[0].options] == [False, True]


# --- through the import ----------------------------------------------------------------------------


def test_the_import_brings_in_the_good_questions_and_reports_every_bad_one(db):
    lesson = LessonFactory()
    report = questions_import(
        content=WITH_ERRORS.encode(), file_format="aiken", default_lesson=lesson, filename="errors.txt"
    )
    assert report.applied and len(report.created) == 3
    assert [item.line for item in report.malformed] == [line for line, _ in BAD]
    assert all(reason in item.reason for (_, reason), item in zip(BAD, report.malformed))
    assert sorted(shown(q.stem) for q in Question.objects.filter(lesson=lesson)) == sorted(GOOD_STEMS)
    assert "3 created, 0 updated, 0 unchanged, 4 not imported (errors)" == str(report)


def test_a_question_the_rules_refuse_is_reported_too_and_the_rest_imported(db):
    lesson = LessonFactory()
    text = "Which port?\nA. 80\nB. 80\nANSWER: A\n\nWhich proxy?\nA. Sidecar\nB. Database\nANSWER: A\n"
    report = questions_import(content=text.encode(), file_format="aiken", default_lesson=lesson, filename="q.txt")
    assert [(item.line, item.reason) for item in report.malformed] == [
        (1, "question 'Which port?' has two options with the same text")
    ]
    assert list(Question.objects.values_list("stem", flat=True)) == ["Which proxy?"]


def test_asked_to_refuse_the_whole_file_it_names_every_bad_question_and_imports_nothing(db):
    lesson = LessonFactory()
    with pytest.raises(ContentError) as error:
        questions_import(
            content=WITH_ERRORS.encode(),
            file_format="aiken",
            default_lesson=lesson,
            filename="errors.txt",
            refuse_unsupported=True,
        )
    message = str(error.value)
    assert all(f"line {line}: {reason}" in message for line, reason in BAD), message
    assert "fix them and import the file again" in message
    assert not Question.objects.exists()


def test_a_file_with_only_bad_questions_is_refused_naming_each(db):
    lesson = LessonFactory()
    with pytest.raises(ContentError) as error:
        questions_import(
            content=b"One?\nA. x\nANSWER: A\n\nTwo?\nA. x\nB. y\n",
            file_format="aiken",
            default_lesson=lesson,
            filename="bad.txt",
        )
    assert "holds no question that can be imported: line 1:" in str(error.value)
    assert "line 5: question 'Two?' has no 'ANSWER: <letter>' line" in str(error.value)


def test_the_command_imports_the_good_questions_and_lists_each_bad_one(tmp_path, db, capsys):
    lesson = LessonFactory()
    path = tmp_path / "errors.txt"
    path.write_text(WITH_ERRORS, encoding="utf-8")
    call_command("import_questions", str(path), "--lesson", lesson.slug)
    out = capsys.readouterr().out
    for line, reason in BAD:
        assert f"errors.txt: line {line}: {reason}" in out
    assert "3 created" in out and "4 not imported (errors)" in out
    assert Question.objects.count() == 3


def test_the_command_refuses_the_whole_file_when_asked(tmp_path, db):
    lesson = LessonFactory()
    path = tmp_path / "errors.txt"
    path.write_text(WITH_ERRORS, encoding="utf-8")
    with pytest.raises(CommandError, match=r"Nothing was imported\. errors\.txt: has questions with errors \(line 1"):
        call_command("import_questions", str(path), "--lesson", lesson.slug, "--all-or-nothing")
    assert not Question.objects.exists()


# --- the admin import, run by a real Celery worker ------------------------------------------------------


def _wait_until_finished(client, url, bound=60):
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        fragment = client.get(url, headers={"HX-Request": "true"}).content.decode()
        if "hx-trigger" not in fragment:
            return fragment
        time.sleep(0.2)
    raise AssertionError(f"the import did not finish within {bound} s")


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_the_admin_import_reports_every_bad_question_and_imports_the_rest(instructor):
    lesson = LessonFactory()
    client = Client()
    client.force_login(instructor)

    def upload(**extra):
        response = client.post(
            reverse("admin:quizzes_question_import"),
            {"file": SimpleUploadedFile("errors.txt", WITH_ERRORS.encode()), "format": "aiken", "lesson": lesson.pk}
            | extra,
        )
        assert response.status_code == 302
        return _wait_until_finished(client, response["Location"])

    with start_worker(app, pool="solo", perform_ping_check=False, shutdown_timeout=10):
        refused = upload(refuse_unsupported="on")
        assert not Question.objects.exists()
        fragment = upload()

    assert 'id="import-error"' in refused and "has questions with errors (line 1:" in refused
    assert '<td id="count-created">3</td>' in fragment and '<td id="count-malformed">4</td>' in fragment
    for line, reason in BAD:
        assert f"<li>{escape(f'line {line}: {reason}')}" in fragment
    assert Question.objects.filter(lesson=lesson).count() == 3
    assert QuestionImport.objects.first().status == QuestionImport.Status.DONE
