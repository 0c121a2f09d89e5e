"""Practice questions, their options and solutions, and learners' attempts, responses and reviews."""

import uuid

from django.conf import settings
from django.db import models
from django.urls import reverse

from meshlearn.fields import LinesField


def new_seed() -> str:
    return uuid.uuid4().hex


class Question(models.Model):
    class Difficulty(models.TextChoices):
        EASY = "easy", "Easy"
        MEDIUM = "medium", "Medium"
        HARD = "hard", "Hard"

    key = models.SlugField(max_length=120, unique=True, help_text="Stable identifier; never reuse it.")
    lesson = models.ForeignKey("lessons.Lesson", on_delete=models.PROTECT, related_name="questions")
    stem = models.TextField(help_text="Markdown. Never mention option letters: options are shuffled.")
    stem_html = models.TextField(editable=False, blank=True)
    quick_check = models.CharField(max_length=300, blank=True)
    common_mistakes = LinesField(max_line_length=500, help_text="One common mistake per line.")
    general_feedback = models.TextField(blank=True)
    tags = LinesField(max_line_length=50, forbidden=",;", help_text="One tag per line (a word or a short phrase).")
    difficulty = models.CharField(max_length=10, choices=Difficulty.choices, default=Difficulty.MEDIUM)
    order = models.PositiveIntegerField(default=0)
    published = models.BooleanField(default=True)
    source_hash = models.CharField(max_length=64, blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["lesson__order", "order", "id"]

    def __str__(self) -> str:
        return self.key

    def get_absolute_url(self) -> str:
        return reverse("admin:quizzes_question_preview", args=[self.pk])

    @property
    def quick_check_claim(self) -> str:
        """The quick check without a closing full stop, so "= B ✓" can follow it."""
        return self.quick_check.rstrip().rstrip(".")


class Option(models.Model):
    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="options")
    # What the browser sees as the option's value: random, so neither order nor id hints at the key.
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    text = models.CharField(max_length=500)
    is_correct = models.BooleanField(default=False)
    feedback = models.TextField(blank=True, help_text="Shown to a learner who picks this option.")
    order = models.PositiveIntegerField(default=0, help_text="Authoring order; learners see a shuffle.")

    class Meta:
        ordering = ["order", "id"]

    def __str__(self) -> str:
        return self.text


class SolutionStep(models.Model):
    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="steps")
    order = models.PositiveIntegerField(default=0)
    title = models.CharField(max_length=200)
    body = models.TextField()

    class Meta:
        ordering = ["order", "id"]

    def __str__(self) -> str:
        return self.title


class Attempt(models.Model):
    """One practice session: an ordered set of questions answered one at a time."""

    class Kind(models.TextChoices):
        LESSON = "lesson", "Lesson practice"
        MIXED = "mixed", "Mixed practice"
        MISSED = "missed", "What I missed"
        REVIEW = "review", "Review queue"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="attempts")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    lesson = models.ForeignKey("lessons.Lesson", null=True, blank=True, on_delete=models.SET_NULL)
    question_ids = models.JSONField(help_text="The questions of this attempt, in the order asked.")
    # Seeds every option shuffle of this attempt, so a page reload shows the same order.
    shuffle_seed = models.CharField(max_length=32, default=new_seed, editable=False)
    started_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} #{self.pk} by {self.user}"

    def get_absolute_url(self) -> str:
        return reverse("quizzes:attempt", args=[self.pk])


class Response(models.Model):
    attempt = models.ForeignKey(Attempt, on_delete=models.CASCADE, related_name="responses")
    # PROTECT: deleting an answered question would rewrite learners' scores; unpublish it instead.
    question = models.ForeignKey(Question, on_delete=models.PROTECT, related_name="responses")
    option = models.ForeignKey(Option, null=True, on_delete=models.SET_NULL, related_name="responses")
    is_correct = models.BooleanField()
    # The option ids in the order this learner saw them: every letter shown is derived from it.
    shown_order = models.JSONField()
    answered_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["attempt", "question"], name="one_response_per_question")]
        ordering = ["answered_at", "id"]


class ReviewCard(models.Model):
    """A learner's spaced-repetition card for one question (FSRS state as JSON)."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="review_cards")
    question = models.ForeignKey(Question, on_delete=models.CASCADE, related_name="review_cards")
    state = models.JSONField()
    due = models.DateTimeField(db_index=True)
    lapses = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "question"], name="one_card_per_question")]
        ordering = ["due"]


class QuestionImport(models.Model):
    """One uploaded GIFT or Aiken file, imported by a Celery worker so no web request waits for it."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Importing"
        CONFIRM = "confirm", "Waiting for your confirmation"
        DONE = "done", "Imported"
        FAILED = "failed", "Refused"

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    filename = models.CharField(max_length=255)
    file_format = models.CharField(max_length=10)
    content = models.BinaryField()
    lesson = models.ForeignKey("lessons.Lesson", null=True, blank=True, on_delete=models.SET_NULL)
    refuse_unsupported = models.BooleanField(default=False)
    confirmed = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    done = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(default=0)
    report = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.filename} ({self.get_status_display()})"

    def get_absolute_url(self) -> str:
        return reverse("admin:quizzes_question_import_status", args=[self.pk])

    @property
    def percent(self) -> int:
        if self.status in {self.Status.DONE, self.Status.CONFIRM}:
            return 100
        return round(100 * self.done / self.total) if self.total else 0

    @property
    def finished(self) -> bool:
        return self.status in {self.Status.DONE, self.Status.FAILED, self.Status.CONFIRM}
