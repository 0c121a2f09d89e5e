"""Admin pieces shared by the apps' admins."""

from django.contrib import admin


class LearnerByNameMixin:
    """Learners' records (attempts, review cards, completions) show the learner by name instead of linking
    to the user account: instructors read these records but may not open accounts (that link was a 403)."""

    @admin.display(description="Learner", ordering="user__username")
    def learner(self, record) -> str:
        return record.user.get_username()

    def get_fields(self, request, obj=None):
        fields = [field for field in super().get_fields(request, obj) if field not in {"user", "learner"}]
        return ["learner", *fields]

    def get_readonly_fields(self, request, obj=None):
        return [*super().get_readonly_fields(request, obj), "learner"]

    def get_exclude(self, request, obj=None):
        return [*(super().get_exclude(request, obj) or []), "user"]
