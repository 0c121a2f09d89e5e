"""The score page shows what an author typed: stems escaped once, never as entities."""

from quizzes.models import Attempt
from quizzes.services import response_submit
from tests.factories import QuestionFactory

from .conftest import wrong_option


def test_the_score_page_shows_stems_as_text_not_entities(client, learner, practice_lesson):
    question = QuestionFactory(lesson=practice_lesson, stem="Service A -> Sidecar A & p99 < 100 ms?")
    attempt = Attempt.objects.create(
        user=learner, kind=Attempt.Kind.LESSON, lesson=practice_lesson, question_ids=[question.pk]
    )
    response_submit(attempt=attempt, question_id=question.pk, option_public_id=str(wrong_option(question.pk).public_id))
    client.force_login(learner)
    html = client.get(attempt.get_absolute_url()).content.decode()
    assert "Service A -&gt; Sidecar A &amp; p99 &lt; 100 ms?" in html  # escaped once, shows as typed
    assert "&amp;gt;" not in html
