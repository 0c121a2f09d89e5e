"""Site-wide writes: demo accounts for a first run. Loading the course is `course_loading.py`."""

from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from .roles import INSTRUCTORS_GROUP, ensure_instructor_group


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
