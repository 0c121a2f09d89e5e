"""What a new learner and instructor stumbled on: raw Markdown, authoring words, odd counts, lost solutions."""

import re
from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from lessons.models import Lesson
from quizzes.models import Attempt, Option, Question, ReviewCard, SolutionStep
from quizzes.services import attempt_start
from tests.factories import QuestionFactory, UserFactory
from tests.quizzes.conftest import wrong_option

AUTHORING_WORDS = re.compile(
    r"\bseed\b|\bsource (lesson|material)\b|\bsource's\b|\bthe source (says|lists|puts|assumes|gives|recommends|treats)\b",
    re.IGNORECASE,
)


def answer_wrongly(client, learner, question):
    attempt = attempt_start(user=learner, kind=Attempt.Kind.LESSON, lesson=question.lesson)
    client.force_login(learner)
    option = wrong_option(question.pk)
    return attempt, client.post(
        reverse("quizzes:answer", args=[attempt.pk]), {"question": question.pk, "option": str(option.public_id)}
    ).content.decode()


def test_every_learner_facing_question_text_renders_markdown_like_the_stem(client, learner, lesson):
    question = QuestionFactory(
        lesson=lesson,
        stem="Which `flag`?",
        options=["`UO` overflow", "`UF` failure"],
        quick_check="`UO` means overflow",
        common_mistakes=["Reading `UF` as overflow"],
        general_feedback="See **the flags** table.",
    )
    Option.objects.filter(question=question).update(feedback="`UF` is a *connection* failure.")
    SolutionStep.objects.filter(question=question).update(title="Read `UO`", body="Flags are **short**.")

    _, html = answer_wrongly(client, learner, question)

    result = html[html.index('id="practice-card"') :]
    assert "`" not in re.sub(r"<[^>]+>", "", result), "raw backticks reach the learner"
    assert "<code>UF</code> failure" in result and "<code>UO</code> overflow" in result  # options
    assert "<p><code>UF</code> is a <em>connection</em> failure.</p>" in result  # option feedback
    assert "Step 1: Read <code>UO</code>" in result and "<strong>short</strong>" in result  # steps
    assert re.search(r"Final answer:</strong> <code>UO</code> overflow → Option [AB]", result)
    assert "<code>UO</code> means overflow = " in result and "<li>Reading <code>UF</code> as overflow</li>" in result
    assert "<strong>the flags</strong>" in result


def test_the_question_page_renders_option_markdown_and_has_an_h1(client, learner, lesson):
    question = QuestionFactory(lesson=lesson, options=["`UO` overflow", "`UF` failure"])
    attempt = attempt_start(user=learner, kind=Attempt.Kind.LESSON, lesson=question.lesson)
    client.force_login(learner)
    html = client.get(attempt.get_absolute_url()).content.decode()
    assert '<span class="option-text"><code>UO</code> overflow</span>' in html
    assert f'<h1 class="practice-title">Practice: {lesson.title}</h1>' in html


def test_option_letters_are_read_out_since_feedback_refers_to_them(client, learner, lesson):
    question = QuestionFactory(lesson=lesson)
    _, html = answer_wrongly(client, learner, question)
    assert re.search(r'<span class="option-letter"><span class="visually-hidden">Option </span>[A-D]</span>', html)
    assert 'class="option-letter" aria-hidden' not in html


def test_no_authoring_words_reach_learners(client, course, learner):
    texts = []
    for lesson in Lesson.objects.all():
        texts += [lesson.title, lesson.summary, lesson.body_markdown, *lesson.objectives]
        texts.append(client.get(lesson.get_absolute_url()).content.decode())
    for question in Question.objects.prefetch_related("options", "steps"):
        texts += [question.stem, question.quick_check, question.general_feedback, *question.common_mistakes]
        texts += [text for option in question.options.all() for text in (option.text, option.feedback)]
        texts += [text for step in question.steps.all() for text in (step.title, step.body)]
    found = sorted({match.group(0) for text in texts for match in AUTHORING_WORDS.finditer(text)})
    assert not found, found


def test_a_review_due_within_a_minute_is_not_zero_minutes_away(client, learner, lesson):
    question = QuestionFactory(lesson=lesson)
    ReviewCard.objects.create(user=learner, question=question, state={}, due=timezone.now() + timedelta(seconds=30))
    client.force_login(learner)
    html = client.get(reverse("quizzes:home")).content.decode()
    assert not re.search(r"\b0[\s\xa0]minutes", html)  # timeuntil writes a no-break space
    assert "the next review is due in less than a minute" in html


def test_an_abandoned_attempt_says_not_started_instead_of_zero_of_zero(client, learner, lesson):
    QuestionFactory(lesson=lesson)
    attempt = attempt_start(user=learner, kind=Attempt.Kind.LESSON, lesson=lesson)
    client.force_login(learner)
    html = client.get(reverse("quizzes:history")).content.decode()
    assert "0 / 0" not in html
    assert f'Not started · <a href="{attempt.get_absolute_url()}">start</a>' in html


def test_a_missed_question_on_the_score_page_reopens_its_solution(client, learner, lesson):
    question = QuestionFactory(lesson=lesson)
    attempt, _ = answer_wrongly(client, learner, question)
    summary = client.get(attempt.get_absolute_url()).content.decode()
    url = reverse("quizzes:response", args=[attempt.pk, question.pk])
    assert f'<a href="{url}">' in summary

    html = client.get(url).content.decode()  # a fresh load, long after answering
    assert "✗ Not quite" in html and "Step 1: Recall the role" in html and "See your score" in html


def test_a_past_answer_is_only_for_its_learner_and_only_once_answered(client, learner, lesson):
    question, other = QuestionFactory(lesson=lesson), QuestionFactory(lesson=lesson)
    attempt, _ = answer_wrongly(client, learner, question)
    assert client.get(reverse("quizzes:response", args=[attempt.pk, other.pk])).status_code == 404
    client.force_login(UserFactory(username="mallory"))
    assert client.get(reverse("quizzes:response", args=[attempt.pk, question.pk])).status_code == 404


def test_sign_up_from_practice_comes_back_to_practice(client, lesson):
    QuestionFactory(lesson=lesson)
    html = client.get(reverse("quizzes:home")).content.decode()
    assert f'href="{reverse("signup")}?next=/practice/"' in html
    html = client.get(reverse("quizzes:lesson", args=[lesson.slug])).content.decode()
    assert f'href="{reverse("signup")}?next=/practice/lesson/{lesson.slug}/"' in html
    response = client.post(
        f"{reverse('signup')}?next=/practice/",
        {
            "username": "newcomer",
            "password1": "a-long-enough-pass-phrase",
            "password2": "a-long-enough-pass-phrase",
        },
    )
    assert response.status_code == 302 and response["Location"] == "/practice/"


def test_the_options_column_counts_each_option_once_after_a_search(client, instructor):
    QuestionFactory(options=["Sidecar one", "Sidecar two", "Sidecar three", "Database"])
    client.force_login(instructor)
    html = client.get(reverse("admin:quizzes_question_changelist"), {"q": "Sidecar"}).content.decode()
    assert re.search(r'<td class="field-option_count">4</td>', html), re.findall(r'field-option_count">\d+', html)


def test_learner_records_name_the_learner_without_linking_to_the_account(client, instructor, learner, lesson):
    question = QuestionFactory(lesson=lesson)
    attempt, _ = answer_wrongly(client, learner, question)
    client.force_login(instructor)
    for url in (
        reverse("admin:quizzes_attempt_change", args=[attempt.pk]),
        reverse("admin:quizzes_reviewcard_change", args=[ReviewCard.objects.get().pk]),
    ):
        html = client.get(url).content.decode()
        assert "/admin/auth/user/" not in html
        assert learner.username in html
    assert client.get(reverse("admin:auth_user_change", args=[learner.pk])).status_code == 403
