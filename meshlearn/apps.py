from django.apps import AppConfig
from django.db.models.signals import post_migrate


class MeshlearnConfig(AppConfig):
    name = "meshlearn"
    verbose_name = "MeshLearn"

    def ready(self) -> None:
        from .roles import ensure_instructor_group

        # After every migrate, so the group always carries the permissions of current models.
        post_migrate.connect(ensure_instructor_group, dispatch_uid="meshlearn.instructor_group")
