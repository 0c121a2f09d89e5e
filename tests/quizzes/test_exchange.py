"""GIFT and Aiken through the database: export then import gives the same questions; bad files change nothing."""

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from labs.models import Lab
from meshlearn.content import ContentError
from quizzes.exchange import question_to_data, questions_export
from quizzes.formats.text import plain_to_markdown
from quizzes.importing import questions_import
from quizzes.models import Question


def snapshot():
    return [
        question_to_data(q)
        for q in Question.objects.order_by("key").select_related("lesson").prefetch_related("options", "steps")
    ]


def test_gift_export_then_import_gives_the_same_questions(course):
    before = snapshot()
    text = questions_export(questions=Question.objects.all(), file_format="gift")
    Lab.objects.all().delete()  # labs protect their prediction questions
    Question.objects.all().delete()

    report = questions_import(content=text.encode(), file_format="gift", default_lesson=None, filename="all.gift")

    assert len(report.created) == len(before)
    assert snapshot() == before


def test_aiken_export_then_import_keeps_stems_options_and_answers(course, lesson):
    before = {q.key: q for q in snapshot()}
    text = questions_export(questions=Question.objects.all(), file_format="aiken")
    Lab.objects.all().delete()  # labs protect their prediction questions
    Question.objects.all().delete()

    questions_import(content=text.encode(), file_format="aiken", default_lesson=lesson, filename="all.txt")

    after = snapshot()
    assert len(after) == len(before)

    def words(text):  # Aiken puts a stem on one line
        return " ".join(text.split())

    # Aiken is plain text: the Markdown of the export comes back escaped, showing as written.
    by_stem = {words(plain_to_markdown(q.stem)): q for q in before.values()}
    for question in after:
        original = by_stem[words(question.stem)]
        assert [(words(o.text), o.correct) for o in question.options] == [
            (words(plain_to_markdown(o.text)), o.correct) for o in original.options
        ]


def test_a_malformed_gift_file_is_refused_with_the_line_and_imports_nothing(lesson):
    text = "::good::Which proxy?{=Sidecar ~Database}\n\n::bad::Which flag means overflow?{~UF ~UH}\n"
    with pytest.raises(ContentError) as error:
        questions_import(content=text.encode(), file_format="gift", default_lesson=lesson, filename="quiz.gift")
    assert str(error.value).startswith("quiz.gift: line 3")
    assert not Question.objects.exists()


def test_a_non_utf8_file_is_refused(lesson):
    with pytest.raises(ContentError, match="is not UTF-8"):
        questions_import(content=b"\xff\xfe::q::x{=a ~b}", file_format="gift", default_lesson=lesson, filename="q.gift")


def test_import_command_reports_the_line_and_exits_nonzero(tmp_path, lesson):
    path = tmp_path / "bad.gift"
    path.write_text("::q::Which?{=A ~B\n", encoding="utf-8")
    with pytest.raises(CommandError, match=r"Nothing was imported\. bad\.gift: line 1"):
        call_command("import_questions", str(path), "--lesson", lesson.slug)


def test_export_command_writes_gift(course, capsys):
    call_command("export_questions", "--lesson", "why-service-mesh")
    out = capsys.readouterr().out
    assert "$CATEGORY:" in out and "seed-purpose" in out


def run_queued_import(client, response):
    """What the Celery worker does with the queued file (a real worker runs it in test_import_worker.py)."""
    from quizzes.import_runs import question_import_run
    from quizzes.models import QuestionImport

    assert response.status_code == 302
    question_import = QuestionImport.objects.get()
    assert response["Location"] == question_import.get_absolute_url()
    question_import_run(import_id=question_import.pk)
    return client.get(response["Location"]).content.decode()


def test_instructor_imports_a_gift_file_in_the_admin(client, instructor, lesson):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(instructor)
    upload = SimpleUploadedFile(
        "new.gift",
        b"::uf-flag::What does flag UF mean?{=Upstream connection failure#Right ~Upstream overflow#That is UO}\n",
    )
    response = client.post(
        reverse("admin:quizzes_question_import"), {"file": upload, "format": "gift", "lesson": lesson.pk}
    )
    html = run_queued_import(client, response)
    assert '<td id="count-created">1</td>' in html
    question = Question.objects.get(key="uf-flag")
    assert question.lesson == lesson and question.options.get(is_correct=True).feedback == "Right"


def test_admin_import_shows_the_reason_for_a_bad_file(client, instructor, lesson):
    from django.core.files.uploadedfile import SimpleUploadedFile

    client.force_login(instructor)
    upload = SimpleUploadedFile("bad.gift", b"::q::Which?{~A ~B}\n")
    response = client.post(
        reverse("admin:quizzes_question_import"), {"file": upload, "format": "gift", "lesson": lesson.pk}
    )
    assert "Nothing was imported. bad.gift: line 1" in run_queued_import(client, response)
    assert not Question.objects.exists()


def test_admin_export_action_downloads_gift(client, instructor, course):
    client.force_login(instructor)
    ids = list(Question.objects.filter(lesson__slug="why-service-mesh").values_list("pk", flat=True))
    response = client.post(
        reverse("admin:quizzes_question_changelist"), {"action": "export_gift", "_selected_action": ids}
    )
    assert response["Content-Disposition"].startswith("attachment;")
    assert response.content.decode().count("::seed-") == 6
