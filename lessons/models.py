"""A lesson of the course and a learner's completion of it."""

from django.conf import settings
from django.db import models
from django.urls import reverse

from meshlearn.fields import LinesField


class Lesson(models.Model):
    slug = models.SlugField(unique=True)
    title = models.CharField(max_length=200)
    order = models.PositiveIntegerField(default=0, db_index=True)
    summary = models.TextField(blank=True)
    minutes = models.PositiveIntegerField(default=10, help_text="Estimated reading time.")
    objectives = LinesField(max_line_length=300, help_text="One learning objective per line.")
    body_markdown = models.TextField(help_text="Markdown. Rendered and sanitised on save.")
    # Rendered once on save, so a page view does no Markdown work.
    body_html = models.TextField(editable=False, blank=True)
    source_path = models.CharField(max_length=300, blank=True, editable=False)
    source_hash = models.CharField(max_length=64, blank=True, editable=False)
    published = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["order", "id"]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("lessons:detail", kwargs={"slug": self.slug})


class LessonCompletion(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lesson_completions")
    lesson = models.ForeignKey(Lesson, on_delete=models.CASCADE, related_name="completions")
    completed_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "lesson"], name="one_completion_per_lesson")]
        ordering = ["completed_at"]

    def __str__(self) -> str:
        return f"{self.user} completed {self.lesson}"


class LessonVisit(models.Model):
    """The last lesson a learner opened, for "continue where you left off"."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lesson_visit")
    lesson = models.ForeignKey(Lesson, on_delete=models.CASCADE)
    visited_at = models.DateTimeField(auto_now=True)
