"""Practice pages: no answer key before submission, graded fragments, errors, privacy, query counts."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from quizzes.models import Attempt, Option, Response
from quizzes.services import attempt_start
from quizzes.shuffle import shuffled_order

from .conftest import correct_option, wrong_option


def answer(client, attempt, question_id, option, **headers):
    return client.post(
        reverse("quizzes:answer", args=[attempt.pk]), {"question": question_id, "option": str(option)}, **headers
    )


def test_the_question_page_carries_no_trace_of_the_answer(client, learner, attempt):
    client.force_login(learner)
    html = client.get(attempt.get_absolute_url()).content.decode()
    assert "Check answer" in html
    assert "correct" not in html.lower()  # no flag, class, data attribute or comment
    assert "Feedback for:" not in html and "Recall the role" not in html and "Thinking the app retries" not in html
    # option values are random UUIDs, not database ids that could reveal authoring order
    values = re.findall(r'name="option" value="([^"]+)"', html)
    assert len(values) == 4 and all(re.fullmatch(r"[0-9a-f-]{36}", value) for value in values)


def test_options_appear_in_the_attempts_shuffled_order(client, learner, attempt):
    client.force_login(learner)
    question_id = attempt.question_ids[0]
    html = client.get(attempt.get_absolute_url()).content.decode()
    shown = shuffled_order(
        list(Option.objects.filter(question_id=question_id).values_list("id", flat=True)),
        seed=attempt.shuffle_seed,
        question_id=question_id,
    )
    texts = [Option.objects.get(pk=pk).text for pk in shown]
    positions = [html.index(text) for text in texts]
    assert positions == sorted(positions)


def test_a_wrong_answer_shows_its_feedback_and_the_solution_with_the_letter_this_learner_saw(client, learner, attempt):
    client.force_login(learner)
    question_id = attempt.question_ids[0]
    wrong, right = wrong_option(question_id), correct_option(question_id)
    shown = shuffled_order(
        list(Option.objects.filter(question_id=question_id).values_list("id", flat=True)),
        seed=attempt.shuffle_seed,
        question_id=question_id,
    )
    right_letter = "ABCD"[shown.index(right.pk)]
    wrong_letter = "ABCD"[shown.index(wrong.pk)]

    response = answer(client, attempt, question_id, wrong.public_id, HTTP_HX_REQUEST="true")
    html = response.content.decode()

    assert response.status_code == 200 and "<html" not in html
    assert "✗ Not quite" in html
    assert f"About your answer ({wrong_letter})" in html and f"Feedback for: {wrong.text}" in html
    assert f"Final answer:</strong> {right.text} → Option {right_letter}" in html
    assert f"= {right_letter} ✓" in html  # the quick check agrees with the final answer
    assert "Step 1: Recall the role" in html and "Thinking the app retries" in html


def test_a_right_answer_says_so(client, learner, attempt):
    client.force_login(learner)
    question_id = attempt.question_ids[0]
    html = answer(
        client, attempt, question_id, correct_option(question_id).public_id, HTTP_HX_REQUEST="true"
    ).content.decode()
    assert "✓ Correct" in html and "Next question" in html


def test_a_double_click_records_one_response(client, learner, attempt):
    client.force_login(learner)
    question_id = attempt.question_ids[0]
    option = wrong_option(question_id).public_id
    first = answer(client, attempt, question_id, option, HTTP_HX_REQUEST="true")
    second = answer(client, attempt, question_id, option, HTTP_HX_REQUEST="true")
    assert first.status_code == second.status_code == 200
    assert Response.objects.filter(attempt=attempt).count() == 1


@pytest.mark.parametrize("option", ["7", "<script>", "3f1c"])
def test_a_tampered_option_gets_a_400_that_says_what_to_do(client, learner, attempt, option):
    client.force_login(learner)
    response = answer(client, attempt, attempt.question_ids[0], option, HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    assert "not one of the options" in response.content.decode()
    assert response["HX-Retarget"] == "#answer-error"
    assert not Response.objects.exists()


def test_a_missing_choice_gets_a_400_asking_to_pick_one(client, learner, attempt):
    client.force_login(learner)
    response = client.post(reverse("quizzes:answer", args=[attempt.pk]), {"question": attempt.question_ids[0]})
    assert response.status_code == 400 and "Pick one of the options" in response.content.decode()


def test_a_garbled_question_field_gets_a_400(client, learner, attempt):
    client.force_login(learner)
    response = client.post(reverse("quizzes:answer", args=[attempt.pk]), {"question": "abc", "option": "x"})
    assert response.status_code == 400


def test_another_learners_attempt_is_not_found(client, other_learner, attempt):
    client.force_login(other_learner)
    question_id = attempt.question_ids[0]
    assert client.get(attempt.get_absolute_url()).status_code == 404
    assert answer(client, attempt, question_id, correct_option(question_id).public_id).status_code == 404
    assert not Response.objects.exists()


def test_history_shows_only_my_attempts(client, learner, other_learner, attempt, practice_lesson):
    attempt_start(user=other_learner, kind=Attempt.Kind.LESSON, lesson=practice_lesson)
    client.force_login(learner)
    html = client.get(reverse("quizzes:history")).content.decode()
    assert html.count("<tr>") == 2  # the header row and my one attempt
    assert f'href="{attempt.get_absolute_url()}"' in html


def test_answers_without_csrf_are_refused(learner, attempt):
    client = Client(enforce_csrf_checks=True)
    client.force_login(learner)
    question_id = attempt.question_ids[0]
    response = answer(client, attempt, question_id, correct_option(question_id).public_id, HTTP_HX_REQUEST="true")
    assert response.status_code == 403 and not Response.objects.exists()


def test_the_score_page_lists_what_was_missed(client, learner, attempt):
    client.force_login(learner)
    first, *rest = attempt.question_ids
    answer(client, attempt, first, wrong_option(first).public_id)
    for question_id in rest:
        answer(client, attempt, question_id, correct_option(question_id).public_id)
    html = client.get(attempt.get_absolute_url()).content.decode()
    assert "You scored 2 of 3 (67%)" in html and "Practise what I missed" in html


def test_starting_practice_with_an_unknown_kind_is_a_400(client, learner):
    client.force_login(learner)
    assert client.post(reverse("quizzes:start"), {"kind": "everything"}).status_code == 400


@pytest.mark.parametrize("slug", ["", "a\x00b", "../x"])
def test_starting_lesson_practice_with_a_malformed_lesson_is_a_400(client, learner, slug):
    client.force_login(learner)
    response = client.post(reverse("quizzes:start"), {"kind": "lesson", "lesson": slug})
    assert response.status_code == 400 and "named no lesson" in response.content.decode()
    assert not Attempt.objects.exists()


def test_an_empty_review_queue_explains_itself(client, learner, db):
    client.force_login(learner)
    response = client.post(reverse("quizzes:start"), {"kind": "review"}, follow=True)
    assert "Nothing is due for review right now" in response.content.decode()


@pytest.mark.parametrize("options", [2, 6])
def test_question_page_uses_a_constant_number_of_queries(
    client, learner, practice_lesson, django_assert_num_queries, options
):
    from tests.factories import QuestionFactory

    QuestionFactory(lesson=practice_lesson, options=[f"Option text {n}" for n in range(options)])
    attempt = attempt_start(user=learner, kind=Attempt.Kind.LESSON, lesson=practice_lesson)
    client.force_login(learner)
    # session + user, attempt, answered ids, question, its options
    with django_assert_num_queries(6):
        client.get(attempt.get_absolute_url())


@pytest.mark.parametrize("options", [2, 6])
def test_submission_uses_a_constant_number_of_queries(
    client, learner, practice_lesson, django_assert_num_queries, options
):
    from tests.factories import QuestionFactory

    question = QuestionFactory(lesson=practice_lesson, options=[f"Option text {n}" for n in range(options)])
    attempt = Attempt.objects.create(
        user=learner, kind=Attempt.Kind.LESSON, lesson=practice_lesson, question_ids=[question.pk]
    )
    client.force_login(learner)
    chosen = wrong_option(question.pk).public_id
    # session + user, attempt, earlier response, options; in one savepoint: lock attempt, insert response,
    # anything left, finish, review card (select, savepoint, insert, release); question + options + steps
    with django_assert_num_queries(19):
        answer(client, attempt, question.pk, chosen, HTTP_HX_REQUEST="true")


def test_every_letter_on_the_result_matches_the_question_page(client, learner, attempt):
    """For each question: the letter beside every option before answering is the letter the
    result page gives that option, the chosen one and the final answer included."""
    client.force_login(learner)
    option_pattern = re.compile(
        r'value="([0-9a-f-]{36})"[^>]*>\s*<span class="option-letter"[^>]*><span class="visually-hidden">Option </span>([A-D])</span>\s*<span class="option-text">([^<]+)</span>'
    )
    for question_id in attempt.question_ids:
        page = client.get(attempt.get_absolute_url()).content.decode()
        seen = {text.strip(): (public_id, letter) for public_id, letter, text in option_pattern.findall(page)}
        assert len(seen) == 4
        chosen_text = wrong_option(question_id).text
        result = answer(client, attempt, question_id, seen[chosen_text][0], HTTP_HX_REQUEST="true").content.decode()
        for text, (_, letter) in seen.items():
            assert re.search(
                rf'<span class="option-letter"[^>]*><span class="visually-hidden">Option </span>{letter}</span>\s*<span class="option-text">{re.escape(text)}',
                result,
            )
        assert f"About your answer ({seen[chosen_text][1]})" in result
        right = correct_option(question_id).text
        assert f"→ Option {seen[right][1]}" in result
