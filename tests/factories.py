"""factory-boy factories for the project's models."""

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from lessons.models import Lesson
from lessons.services import lesson_save
from meshlearn.roles import INSTRUCTORS_GROUP

PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"learner{n}")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def save_password(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class InstructorFactory(UserFactory):
    is_staff = True

    @factory.post_generation
    def instructor_group(obj, create, extracted, **kwargs):
        if create:
            obj.groups.add(Group.objects.get(name=INSTRUCTORS_GROUP))


class LessonFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Lesson

    slug = factory.Sequence(lambda n: f"lesson-{n}")
    title = factory.Sequence(lambda n: f"Lesson {n}")
    order = factory.Sequence(lambda n: n + 100)
    summary = "A short summary."
    body_markdown = "## Section\n\nSome text about sidecars."

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        return lesson_save(lesson=model_class(*args, **kwargs))
