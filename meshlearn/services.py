"""Site-wide writes: loading the whole course, demo accounts for a first run."""

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from labs.services import labs_parse_all, labs_write
from lessons.content_files import parse_lesson_directory
from lessons.services import LoadReport, lessons_write
from quizzes.services import questions_load_all

from .roles import INSTRUCTORS_GROUP, ensure_instructor_group


def course_load() -> dict[str, LoadReport]:
    """Lessons, their practice sets and their labs from the content files, all or nothing: every file is
    parsed first, and the writes share one transaction."""
    specs = parse_lesson_directory(settings.COURSE_CONTENT_DIRS["lessons"])
    slugs = {spec.slug for spec in specs}
    labs = labs_parse_all(lesson_slugs=slugs)
    with transaction.atomic():
        lessons = lessons_write(specs=specs)
        questions = questions_load_all(lesson_slugs=slugs)
        lab_report = labs_write(specs=labs)
    return {"Lessons": lessons, "Questions": questions, "Labs": lab_report}


@dataclass(frozen=True)
class DemoAccount:
    username: str
    password: str
    role: str


DEMO_ACCOUNTS = (
    DemoAccount("learner", "learn-the-mesh", "learner"),
    DemoAccount("instructor", "teach-the-mesh", "instructor"),
)


@transaction.atomic
def demo_accounts_ensure(*, reset_passwords: bool = True) -> list[DemoAccount]:
    """Create the demo learner and instructor; reset their passwords too unless `reset_passwords` is
    False, when an existing account is left as it is (hashing a password costs a quarter second)."""
    User = get_user_model()
    ensure_instructor_group()
    instructors = Group.objects.get(name=INSTRUCTORS_GROUP)
    for account in DEMO_ACCOUNTS:
        user, created = User.objects.get_or_create(username=account.username)
        if not created and not reset_passwords:
            continue
        user.set_password(account.password)
        user.is_staff = account.role == "instructor"  # staff may enter the admin; not a superuser
        user.save()
        if account.role == "instructor":
            user.groups.add(instructors)
    return list(DEMO_ACCOUNTS)
