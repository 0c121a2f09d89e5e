"""The Instructors group: staff who author course content in the admin without being superusers."""

from django.contrib.auth.models import Group, Permission

INSTRUCTORS_GROUP = "Instructors"
# Apps whose content instructors author; learner records stay read-only to them.
AUTHORED_APPS = ("lessons", "quizzes")
READ_ONLY_MODELS = {"lessoncompletion", "lessonvisit", "attempt", "response", "reviewcard"}


def ensure_instructor_group(**kwargs) -> Group:
    group, _ = Group.objects.get_or_create(name=INSTRUCTORS_GROUP)
    permissions = Permission.objects.filter(content_type__app_label__in=AUTHORED_APPS)
    wanted = [
        permission
        for permission in permissions
        if permission.content_type.model not in READ_ONLY_MODELS or permission.codename.startswith("view_")
    ]
    group.permissions.set(wanted)
    return group
