"""Importing what instructors really have: Moodle's mixed files, format markers, plain-text Aiken, re-imports."""

import pytest
from django.core.management import CommandError, call_command

from lessons.rendering import render_markdown
from meshlearn.content import ContentError
from quizzes.exchange import questions_export
from quizzes.formats.gift import read_gift
from quizzes.importing import MAX_IMPORT_BYTES, questions_import
from quizzes.models import Question
from tests.factories import LessonFactory

# Every question type of Moodle's GIFT documentation (docs.moodle.org/en/GIFT_format), in one file.
MOODLE_MIXED = """\
// question types as Moodle's GIFT page writes them
$CATEGORY: $course$/top/Default for Networking

::Q1:: 1+1\\=2 {T}

::Q2:: What's between orange and green in the spectrum?
{ =yellow # right; good! ~red # wrong, it's yellow ~blue # wrong, it's yellow }

::Q3:: Two plus {=two =2} equals four.

::Q4:: Which animal eats which food? { =cat -> cat food =dog -> dog food }

::Q5:: What is a number from 1 to 5? {#3:2}

::Q7:: When was Ulysses S. Grant born? {#
         =1822:0      # Correct! Full credit.
         =%50%1822:2  # He was born in 1822. Half credit for being close.
}

::Q8:: How are you? {}

::Q9:: You can use your pencil and paper for these next math questions.

::Q10:: What two people are entombed in Grant's tomb? {
   ~%-100%No one
   ~%50%Grant
   ~%50%Grant's wife
   ~%-100%Grant's father
}

::Q11:: Which proxy handles a service's traffic? {
   ~%100%The sidecar #Right, it sits beside each instance.
   ~%0%The database #It stores data.
   ~The compiler
   ####The sidecar is the mesh's data plane.
}

Grant is {~buried =entombed ~living} in Grant's tomb.
"""


def test_a_mixed_moodle_file_imports_its_multiple_choice_and_lists_the_rest_by_line_and_type(db):
    lesson = LessonFactory(slug="networking")

    report = questions_import(
        content=MOODLE_MIXED.encode(), file_format="gift", default_lesson=lesson, filename="moodle.gift"
    )

    assert report.applied
    assert sorted(report.created) == ["grant-is-in-grant-s-tomb", "q11", "q2"]
    assert [(item.line, item.kind) for item in report.unsupported] == [
        (4, "true/false"),
        (9, "short-answer"),
        (11, "matching"),
        (13, "numerical"),
        (15, "numerical"),
        (20, "essay"),
        (22, "description"),
        (24, "multiple-answer (partial credit)"),
    ]
    q11 = Question.objects.get(key="q11")
    assert q11.lesson == lesson  # Moodle's category is not a lesson: the chosen lesson takes it
    assert [(o.text, o.is_correct, o.feedback) for o in q11.options.all()] == [
        ("The sidecar", True, "Right, it sits beside each instance."),
        ("The database", False, "It stores data."),
        ("The compiler", False, ""),
    ]
    assert q11.general_feedback == "The sidecar is the mesh's data plane."
    assert Question.objects.get(key="q2").options.get(is_correct=True).feedback == "right; good!"


def test_the_whole_mixed_file_is_refused_when_asked_naming_every_unsupported_question(db):
    lesson = LessonFactory()
    with pytest.raises(ContentError) as error:
        questions_import(
            content=MOODLE_MIXED.encode(),
            file_format="gift",
            default_lesson=lesson,
            filename="moodle.gift",
            refuse_unsupported=True,
        )
    assert "line 4: true/false" in str(error.value) and "line 24: multiple-answer" in str(error.value)
    assert not Question.objects.exists()


def test_a_category_naming_a_lesson_goes_there_and_others_go_to_the_chosen_lesson(db):
    retries, chosen = LessonFactory(slug="retries"), LessonFactory()
    text = "$CATEGORY: $course$/top/retries\n\n::a:: A? {=x ~y}\n\n$CATEGORY: $course$/top/Week 3\n\n::b:: B? {=x ~y}\n"
    questions_import(content=text.encode(), file_format="gift", default_lesson=chosen, filename="c.gift")
    assert Question.objects.get(key="a").lesson == retries
    assert Question.objects.get(key="b").lesson == chosen


def test_a_category_that_is_no_lesson_without_a_chosen_lesson_says_to_choose_one(db):
    with pytest.raises(ContentError, match="line 3: category 'Week 3' is not a lesson; choose the lesson"):
        questions_import(
            content=b"$CATEGORY: Week 3\n\n::b:: B? {=x ~y}\n",
            file_format="gift",
            default_lesson=None,
            filename="c.gift",
        )


def test_format_markers_apply_to_stem_options_and_feedback_as_in_moodle():
    (plain, markdown, html) = read_gift(
        "::p::[plain]Is **this** <b>bold</b>? {=*yes* #**no** ~b #[markdown]**strong**}\n\n"
        "::m::[markdown]Is **this** bold? {=*yes* #**right** ~no ####`code` here}\n\n"
        "::h::[html]<p>Is <b>this</b> bold?</p> {=<i>yes</i> ~no}\n"
    ).questions

    def shown(text):
        return render_markdown(text)

    assert shown(plain.stem) == "<p>Is **this** &lt;b&gt;bold&lt;/b&gt;?</p>"
    assert shown(plain.options[0].text) == "<p>*yes*</p>"  # the stem's [plain] is the options' format too
    assert shown(plain.options[0].feedback) == "<p>**no**</p>"
    assert shown(plain.options[1].feedback) == "<p><strong>strong</strong></p>"  # its own marker wins
    assert shown(markdown.stem) == "<p>Is <strong>this</strong> bold?</p>"
    assert shown(markdown.options[0].feedback) == "<p><strong>right</strong></p>"
    assert shown(markdown.general_feedback) == "<p><code>code</code> here</p>"
    assert shown(html.stem) == "<p>Is <b>this</b> bold?</p>"
    assert shown(html.options[0].text) == "<p><i>yes</i></p>"


def test_ten_thousand_untitled_questions_with_the_same_stem_get_distinct_keys():
    # Before: 25 s of key searching (quadratic); now one step per question.
    text = "\n".join("Which proxy? {=sidecar ~database}\n" for _ in range(10_000))
    keys = [question.key for question in read_gift(text).questions]
    assert keys[:3] == ["which-proxy", "which-proxy-2", "which-proxy-3"] and len(set(keys)) == 10_000


def test_an_oversized_file_is_refused_before_it_is_read(db):
    with pytest.raises(ContentError, match=r"files up to 4 MB can be imported"):
        questions_import(
            content=b"x" * (MAX_IMPORT_BYTES + 1), file_format="gift", default_lesson=None, filename="big.gift"
        )


def test_a_huge_single_question_is_refused_at_its_first_line_without_expanding_it():
    with pytest.raises(Exception, match="line 1: one question runs over 50,000 characters"):
        read_gift("::q:: " + "x" * 60_000 + " {=a ~b}")


# --- re-importing an export -------------------------------------------------------------


def test_reimporting_an_aiken_export_changes_nothing_and_keeps_feedback(course):
    lesson = Question.objects.first().lesson
    questions = Question.objects.filter(lesson=lesson)
    count, feedback = Question.objects.count(), sorted(questions.values_list("options__feedback", flat=True))
    text = questions_export(questions=questions, file_format="aiken")

    report = questions_import(content=text.encode(), file_format="aiken", default_lesson=lesson, filename="x.txt")

    assert (len(report.created), len(report.updated), len(report.unchanged)) == (0, 0, questions.count())
    assert Question.objects.count() == count  # no duplicates
    assert sorted(Question.objects.filter(lesson=lesson).values_list("options__feedback", flat=True)) == feedback


def test_reimporting_a_gift_export_is_unchanged(course):
    text = questions_export(questions=Question.objects.all(), file_format="gift")
    report = questions_import(content=text.encode(), file_format="gift", default_lesson=None, filename="x.gift")
    assert (len(report.created), len(report.updated), len(report.unchanged)) == (0, 0, Question.objects.count())


def test_an_aiken_file_with_an_edited_option_keeps_the_feedback_of_the_others(db):
    lesson = LessonFactory()
    questions_import(
        content=b"::q:: Which proxy? {=Sidecar #Right ~Database #Stores data ~Compiler #Builds code}",
        file_format="gift",
        default_lesson=lesson,
        filename="q.gift",
    )
    aiken = b"Which proxy?\nA. Sidecar\nB. Database\nC. Load balancer\nANSWER: A\n"

    report = questions_import(content=aiken, file_format="aiken", default_lesson=lesson, filename="q.txt")
    assert not report.applied and report.confirmations[0].reasons == ["drops the feedback of 1 option"]
    assert Question.objects.get().options.count() == 3 and Question.objects.get().options.get(text="Compiler")

    report = questions_import(content=aiken, file_format="aiken", default_lesson=lesson, filename="q.txt", confirm=True)
    assert report.applied and report.updated == ["q"]
    assert [(o.text, o.feedback) for o in Question.objects.get().options.all()] == [
        ("Sidecar", "Right"),
        ("Database", "Stores data"),
        ("Load balancer", ""),
    ]


def test_a_gift_change_that_drops_feedback_or_moves_lessons_waits_for_confirmation(db):
    first, second = LessonFactory(slug="first"), LessonFactory(slug="second")
    questions_import(
        content=b"$CATEGORY: first\n\n::q:: Which? {=A #Right ~B #Wrong}",
        file_format="gift",
        default_lesson=None,
        filename="q.gift",
    )
    changed = b"$CATEGORY: second\n\n::q:: Which? {=A ~B #Wrong}"

    report = questions_import(content=changed, file_format="gift", default_lesson=None, filename="q.gift")

    assert not report.applied
    assert report.confirmations[0].reasons == [
        "moves it from lesson 'first' to 'second'",
        "drops the feedback of 1 option",
    ]
    question = Question.objects.get()
    assert question.lesson == first and question.options.get(text="A").feedback == "Right"

    questions_import(content=changed, file_format="gift", default_lesson=None, filename="q.gift", confirm=True)
    question.refresh_from_db()
    assert question.lesson == second and question.options.get(text="A").feedback == ""


def test_an_untitled_question_never_overwrites_a_different_question_with_the_same_key(db):
    lesson = LessonFactory()
    questions_import(
        content=b"::which-proxy:: Which proxy? {=Sidecar #Right ~Database}",
        file_format="gift",
        default_lesson=lesson,
        filename="a.gift",
    )
    report = questions_import(
        content=b"Which-proxy!\nA. one\nB. two\nANSWER: A\n",
        file_format="aiken",
        default_lesson=lesson,
        filename="b.txt",
    )
    assert report.created == ["which-proxy-2"]
    assert Question.objects.get(key="which-proxy").options.get(text="Sidecar").feedback == "Right"


# --- the command line --------------------------------------------------------------------


def test_the_command_detects_an_aiken_file(tmp_path, lesson, capsys):
    path = tmp_path / "quiz.txt"
    path.write_text("Which proxy?\nA. Sidecar\nB. Database\nANSWER: A\n", encoding="utf-8")
    call_command("import_questions", str(path), "--lesson", lesson.slug)
    assert "1 created" in capsys.readouterr().out
    assert Question.objects.get().stem == "Which proxy?"


def test_the_command_says_to_pass_format_aiken_when_detection_fails(tmp_path, lesson):
    path = tmp_path / "quiz.txt"
    path.write_text("Which {proxy}?\nA. Sidecar\nB. Database\nANSWER: A\n", encoding="utf-8")
    with pytest.raises(CommandError, match="pass --format aiken"):
        call_command("import_questions", str(path), "--lesson", lesson.slug)


def test_the_command_lists_unsupported_questions_and_asks_for_confirm(tmp_path, db, capsys):
    lesson = LessonFactory()
    path = tmp_path / "moodle.gift"
    path.write_text(MOODLE_MIXED, encoding="utf-8")
    call_command("import_questions", str(path), "--lesson", lesson.slug)
    out = capsys.readouterr().out
    assert "line 4: true/false question 'Q1' not imported" in out and "3 created" in out


# --- the worker's side ---------------------------------------------------------------------


def test_an_import_that_races_another_writer_ends_refused_not_stuck(db, monkeypatch, instructor):
    import quizzes.importing
    from quizzes.import_runs import question_import_run
    from quizzes.models import QuestionImport
    from quizzes.services import question_import_start
    from tests.factories import QuestionFactory

    lesson = LessonFactory()
    real_plan = quizzes.importing.import_plan

    def plan_then_someone_else_writes(**kwargs):
        planned = real_plan(**kwargs)
        QuestionFactory(key="racing", lesson=lesson)  # another instructor's import lands first
        return planned

    monkeypatch.setattr(quizzes.importing, "import_plan", plan_then_someone_else_writes)
    question_import = question_import_start(
        user=instructor, content=b"::racing:: Which? {=A ~B}", filename="r.gift", file_format="gift", lesson=lesson
    )
    question_import_run(import_id=question_import.pk)

    question_import.refresh_from_db()
    assert question_import.status == QuestionImport.Status.FAILED
    assert "written by someone else while it was importing; import the file again" in question_import.error
    assert Question.objects.get(key="racing").options.count() == 4  # the other writer's question, untouched


def test_the_admin_refuses_an_oversized_upload_on_its_declared_size(client, instructor):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.urls import reverse

    from quizzes.models import QuestionImport

    client.force_login(instructor)
    upload = SimpleUploadedFile("big.gift", b"x" * (MAX_IMPORT_BYTES + 100_000))
    response = client.post(reverse("admin:quizzes_question_import"), {"file": upload, "format": "gift"})
    assert response.status_code == 413
    assert "files up to 4 MB can be imported" in response.content.decode()
    assert not QuestionImport.objects.exists()


def test_the_import_page_links_recent_imports_to_their_results(client, instructor):
    from django.urls import reverse

    from quizzes.services import question_import_start

    lesson = LessonFactory()
    question_import = question_import_start(
        user=instructor, content=b"::a:: A? {=x ~y}", filename="week1.gift", file_format="gift", lesson=lesson
    )
    client.force_login(instructor)
    html = client.get(reverse("admin:quizzes_question_import")).content.decode()
    assert f'<a href="{question_import.get_absolute_url()}">week1.gift</a> · Queued' in html
