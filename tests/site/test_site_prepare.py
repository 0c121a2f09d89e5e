"""bin/run's preparation step: a second start redoes nothing that is already done, and says what it does."""

from io import StringIO

from django.contrib.auth import get_user_model
from django.core.management import call_command

from lessons.models import Lesson


def prepare() -> str:
    out = StringIO()
    call_command("site_prepare", stdout=out)
    return out.getvalue()


def test_a_second_start_migrates_nothing_reloads_nothing_and_rehashes_no_password(db):
    first = prepare()
    assert "==> Course ..." in first and "lessons: 6 created" in first
    assert "username: learner" in first and "password: learn-the-mesh" in first
    hashes = dict(get_user_model().objects.values_list("username", "password"))
    rendered = dict(Lesson.objects.values_list("slug", "updated_at"))

    second = prepare()
    assert "==> Database ... up to date" in second
    assert "lessons: 0 created, 0 updated, 6 unchanged" in second and "0 created, 0 updated, 51 unchanged" in second
    # set_password salts afresh, so an unchanged hash proves no password was hashed again
    assert dict(get_user_model().objects.values_list("username", "password")) == hashes
    assert dict(Lesson.objects.values_list("slug", "updated_at")) == rendered


def test_demo_accounts_command_still_resets_the_passwords(db):
    prepare()
    user = get_user_model().objects.get(username="learner")
    user.set_password("changed-by-someone")
    user.save()
    prepare()
    assert not get_user_model().objects.get(username="learner").check_password("learn-the-mesh")
    call_command("demo_accounts", stdout=StringIO())
    assert get_user_model().objects.get(username="learner").check_password("learn-the-mesh")
