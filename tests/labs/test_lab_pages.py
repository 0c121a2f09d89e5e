"""Lab pages without a running mesh: the list, the prediction (graded on the server, first answer kept, no key
before answering), progress on the course home and lesson pages, and who may see and do what."""

import pytest
from django.urls import reverse

from labs.models import Lab, LabProgress
from quizzes.models import Option

pytestmark = pytest.mark.usefixtures("course")


def predict(client, lab, option, **headers):
    return client.post(reverse("labs:predict", args=[lab.slug]), {"option": str(option)}, **headers)


@pytest.fixture
def lab(db, course):
    return Lab.objects.get(slug="retries-hide-flaky")


def test_the_lab_list_shows_every_lab_with_its_lesson(client):
    html = client.get(reverse("labs:list")).content.decode()
    for lab in Lab.objects.all():
        assert lab.title.replace("'", "&#x27;") in html


def test_a_lab_page_carries_no_trace_of_the_answer_before_the_prediction(client, learner, lab):
    client.force_login(learner)
    html = client.get(lab.get_absolute_url()).content.decode()
    assert lab.prediction.stem.split("?")[0][:40] in html.replace("&#x27;", "'")
    for option in lab.prediction.options.all():
        assert option.feedback[:30] not in html.replace("&#x27;", "'")
    assert "tag-ok" not in html and "option correct" not in html  # no option is marked right
    assert lab.explanation_html[:40] not in html
    assert 'name="csrfmiddlewaretoken"' in html


def test_a_wrong_prediction_is_graded_with_its_feedback_and_shows_what_happens(client, learner, lab):
    client.force_login(learner)
    wrong = lab.prediction.options.filter(is_correct=False).first()
    response = predict(client, lab, wrong.public_id, HTTP_HX_REQUEST="true")
    html = response.content.decode().replace("&#x27;", "'")
    assert response.status_code == 200
    assert "Not what happens" in html and wrong.feedback in html
    progress = LabProgress.objects.get(user=learner, lab=lab)
    assert progress.option == wrong and progress.prediction_correct is False
    assert "Start the lab" in html  # the steps open once the learner has committed to a prediction


def test_the_first_prediction_is_the_one_kept(client, learner, lab):
    client.force_login(learner)
    right = lab.prediction.options.get(is_correct=True)
    wrong = lab.prediction.options.filter(is_correct=False).first()
    predict(client, lab, right.public_id)
    predict(client, lab, wrong.public_id)
    assert LabProgress.objects.get(user=learner, lab=lab).option == right


@pytest.mark.parametrize("value", ["", "not-a-uuid", "00000000-0000-0000-0000-000000000000"])
def test_a_tampered_prediction_gets_a_400_that_says_what_to_do(client, learner, lab, value):
    client.force_login(learner)
    response = predict(client, lab, value, HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    assert "option" in response.content.decode()
    assert not LabProgress.objects.filter(user=learner, predicted_at__isnull=False).exists()


def test_another_questions_option_is_refused(client, learner, lab):
    client.force_login(learner)
    other = Option.objects.exclude(question=lab.prediction).first()
    assert predict(client, lab, other.public_id).status_code in (302, 400)
    assert not LabProgress.objects.filter(user=learner, predicted_at__isnull=False).exists()


def test_writes_need_a_login(client, lab):
    for name in ("predict", "start", "press"):
        response = client.post(reverse(f"labs:{name}", args=[lab.slug]))
        assert response.status_code == 302 and reverse("login") in response["Location"]


def test_writes_need_the_csrf_token(learner, lab):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(learner)
    right = lab.prediction.options.get(is_correct=True)
    assert predict(client, lab, right.public_id).status_code == 403
    assert client.post(reverse("labs:start", args=[lab.slug])).status_code == 403


def test_starting_before_predicting_is_refused_with_a_reason(client, learner, lab):
    client.force_login(learner)
    response = client.post(reverse("labs:start", args=[lab.slug]), HTTP_HX_REQUEST="true")
    assert response.status_code == 400 and "Answer the prediction first" in response.content.decode()


def test_a_button_of_a_lab_not_started_is_refused(client, learner, lab):
    client.force_login(learner)
    predict(client, lab, lab.prediction.options.first().public_id)
    response = client.post(reverse("labs:press", args=[lab.slug]), {"step": "1", "action": "0"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 400 and "not running" in response.content.decode()
    response = client.post(reverse("labs:press", args=[lab.slug]), {"step": "x", "action": "0"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 400 and "not part of this lab" in response.content.decode()


def test_unpublished_labs_are_hidden_from_learners_and_previewable_by_staff(client, learner, instructor, lab):
    Lab.objects.filter(pk=lab.pk).update(published=False)
    client.force_login(learner)
    assert client.get(lab.get_absolute_url()).status_code == 404
    client.force_login(instructor)
    response = client.get(lab.get_absolute_url())
    assert response.status_code == 200 and "Draft" in response.content.decode()


def test_the_lesson_page_links_to_its_labs(client, lab):
    html = client.get(lab.lesson.get_absolute_url()).content.decode()
    for each in Lab.objects.filter(lesson=lab.lesson):
        assert each.get_absolute_url() in html


def test_the_course_home_shows_lab_progress_beside_lesson_progress(client, learner, lab):
    client.force_login(learner)
    total = Lab.objects.count()
    assert f"0 of {total}</strong> labs complete" in client.get(reverse("lessons:course")).content.decode()
    LabProgress.objects.create(user=learner, lab=lab, completed_at="2026-01-01T00:00:00Z")
    assert f"1 of {total}</strong> labs complete" in client.get(reverse("lessons:course")).content.decode()


def test_the_admin_lets_an_instructor_edit_a_lab_with_the_loaders_rules(client, instructor, lab):
    client.force_login(instructor)
    url = reverse("admin:labs_lab_change", args=[lab.pk])
    assert client.get(url).status_code == 200
    import json

    form = {
        "title": lab.title,
        "slug": lab.slug,
        "lesson": lab.lesson_id,
        "order": lab.order,
        "published": "on",
        "topology": lab.topology,
        "goal": lab.goal,
        "prediction": lab.prediction_id,
        "start_commands": json.dumps(lab.start_commands),
        "steps": json.dumps(lab.steps),
        "checks": json.dumps(lab.checks),
        "explanation": "Now **bold**.",
    }
    bad = {**form, "checks": json.dumps([{"name": "x", "says": "s", "for": 5, "when": ["retries at a->z > 0"]}])}
    response = client.post(url, bad)
    assert (
        response.status_code == 200 and "edge &#x27;a-&gt;z&#x27; is not in the topology" in response.content.decode()
    )
    bad = {
        **form,
        "steps": json.dumps(
            [{"text": "t", "actions": [{"label": "l", "command": {"action": "fail", "service": "b", "percent": 500}}]}]
        ),
    }
    assert "percent: must be a number from 0 to 100" in client.post(url, bad).content.decode()
    assert client.post(url, form).status_code == 302
    assert "<strong>bold</strong>" in Lab.objects.get(pk=lab.pk).explanation_html


def test_without_the_live_sandbox_starting_a_lab_says_so_in_words(client, learner, lab, settings):
    client.force_login(learner)
    predict(client, lab, lab.prediction.options.first().public_id)
    # a site without the sandbox app's Django side
    settings.INSTALLED_APPS = [app for app in settings.INSTALLED_APPS if app != "sandbox"]
    response = client.post(reverse("labs:start", args=[lab.slug]), HTTP_HX_REQUEST="true")
    assert response.status_code == 400
    assert "The live sandbox is not available on this site" in response.content.decode()
    assert LabProgress.objects.get(user=learner, lab=lab).experiment_id is None
