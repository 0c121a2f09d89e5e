"""Sign up, log in, log out."""

from django.contrib.auth import get_user_model
from django.urls import reverse


def test_signup_creates_an_account_and_logs_in(client, db):
    response = client.post(
        reverse("signup"),
        {"username": "newbie", "password1": "a-long-pass-phrase-1", "password2": "a-long-pass-phrase-1"},
    )
    assert response.status_code == 302
    assert get_user_model().objects.filter(username="newbie").exists()
    assert "Log out" in client.get(reverse("lessons:course")).content.decode()


def test_signup_errors_are_shown_and_nothing_is_created(client, db):
    response = client.post(reverse("signup"), {"username": "newbie", "password1": "abc", "password2": "abd"})
    assert response.status_code == 200
    assert "The two password fields didn’t match." in response.content.decode()
    assert not get_user_model().objects.exists()


def test_signup_never_redirects_off_site(client, db):
    response = client.post(
        reverse("signup") + "?next=https://evil.example/",
        {"username": "n", "password1": "a-long-pass-phrase-1", "password2": "a-long-pass-phrase-1"},
    )
    assert response.url == reverse("lessons:course")


def test_logout_is_a_post_and_ends_the_session(client, learner):
    client.force_login(learner)
    client.post(reverse("logout"))
    assert "Log in" in client.get(reverse("lessons:course")).content.decode()


def test_demo_accounts_command_prints_credentials_and_grants_roles(db):
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("demo_accounts", stdout=out)
    instructor = get_user_model().objects.get(username="instructor")
    assert "password: teach-the-mesh" in out.getvalue()
    assert instructor.is_staff and not instructor.is_superuser
    assert instructor.has_perm("lessons.change_lesson")
    assert not get_user_model().objects.get(username="learner").is_staff


def test_the_500_page_is_friendly_and_needs_no_database(rf):
    from meshlearn.views import server_error

    response = server_error(rf.get("/boom"))
    assert response.status_code == 500
    assert "Something went wrong on our side" in response.content.decode()
    assert "Your progress is safe" in response.content.decode()
