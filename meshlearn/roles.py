"""The Instructors group: staff who author course content in the admin without being superusers."""

from django.contrib.auth.models import Group, Permission

INSTRUCTORS_GROUP = "Instructors"
# Apps whose content instructors author; learner records stay read-only to them.
AUTHORED_APPS = ("lessons", "quizzes", "labs")
READ_ONLY_MODELS = {"lessoncompletion", "lessonvisit", "attempt", "response", "reviewcard", "labprogress"}
# Apps instructors only watch: they see every learner's experiments (and stop them with an admin action).
WATCHED_APPS = ("sandbox",)


def ensure_instructor_group(**kwargs) -> Group:
    group, _ = Group.objects.get_or_create(name=INSTRUCTORS_GROUP)
    permissions = Permission.objects.filter(content_type__app_label__in=AUTHORED_APPS + WATCHED_APPS)
    wanted = [
        permission
        for permission in permissions
        if permission.codename.startswith("view_")
        or (
            permission.content_type.app_label in AUTHORED_APPS and permission.content_type.model not in READ_ONLY_MODELS
        )
    ]
    group.permissions.set(wanted)
    return group
