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


class QuestionFactory(factory.django.DjangoModelFactory):
    """A single-answer question with four options; the first one listed is correct."""

    class Meta:
        model = "quizzes.Question"
        skip_postgeneration_save = True

    key = factory.Sequence(lambda n: f"question-{n}")
    lesson = factory.SubFactory(LessonFactory)
    stem = factory.Sequence(lambda n: f"Question {n}: what does a sidecar do?")
    quick_check = "Sidecars carry the traffic."
    common_mistakes = ["Thinking the app retries"]

    @classmethod
    def _create(cls, model_class, *args, **kwargs):
        from quizzes.services import question_save

        return question_save(question=model_class(*args, **kwargs))

    @factory.post_generation
    def options(obj, create, extracted, **kwargs):
        if not create:
            return
        texts = extracted or ["Carries traffic for its service", "Stores data", "Compiles code", "Renders pages"]
        for order, text in enumerate(texts):
            obj.options.create(text=text, is_correct=order == 0, feedback=f"Feedback for: {text}", order=order)
        obj.steps.create(order=0, title="Recall the role", body="A sidecar proxies its service's traffic.")
