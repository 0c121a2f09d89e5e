"""Prepares the load test's learners: accounts, logged-in sessions and one practice session each,
written as JSON for bench/locustfile.py. Logging 50 learners in through the form would spend the
first seconds of the run on password hashing, which is not what the run measures.

    DJANGO_SETTINGS_MODULE=bench.settings python bench/site_prepare.py OUT.json COUNT"""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import django  # noqa: E402

django.setup()

from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model  # noqa: E402
from django.contrib.sessions.backends.db import SessionStore  # noqa: E402

from lessons.models import Lesson  # noqa: E402
from quizzes.models import Attempt  # noqa: E402
from quizzes.services import attempt_start  # noqa: E402


def main(out: Path, count: int) -> None:
    User = get_user_model()
    lessons = list(Lesson.objects.filter(published=True).values_list("slug", flat=True))
    first = Lesson.objects.filter(published=True).first()
    learners = []
    for n in range(count):
        user, created = User.objects.get_or_create(username=f"bench-learner-{n}")
        if created:
            user.set_unusable_password()
            user.save()
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        attempt = attempt_start(user=user, kind=Attempt.Kind.LESSON, lesson=first)
        learners.append({"username": user.username, "sessionid": session.session_key, "attempt": attempt.pk})
    out.write_text(json.dumps({"lessons": lessons, "learners": learners}))


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
