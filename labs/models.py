"""Guided labs (predict, break, observe, fix on the live mesh) and each learner's progress through one."""

from django.conf import settings
from django.db import models
from django.urls import reverse


class Lab(models.Model):
    class Topology(models.TextChoices):
        PAIR = "pair", "pair: a → b"
        SHOP = "shop", "shop: frontend → catalog ×3, cart → payments"

    slug = models.SlugField(unique=True)
    title = models.CharField(max_length=200)
    lesson = models.ForeignKey("lessons.Lesson", on_delete=models.PROTECT, related_name="labs")
    order = models.PositiveIntegerField(default=0, db_index=True)
    topology = models.CharField(max_length=20, choices=Topology.choices)
    goal = models.TextField()
    # Commands in the engine's vocabulary (sandbox/mesh/commands.py: {"action": "fail", ...}), applied when the lab starts.
    start_commands = models.JSONField(default=list, blank=True)
    # The prediction is a practice question (per-option feedback, exactly one correct), kept out of practice sets.
    prediction = models.OneToOneField("quizzes.Question", on_delete=models.PROTECT, related_name="lab")
    # [{"text": str, "actions": [{"label": str, "command": {...}}]}]
    steps = models.JSONField(default=list)
    # [{"name", "says", "for", "when": [condition, ...]}]: see labs/checks.py for the grammar.
    checks = models.JSONField(default=list)
    explanation = models.TextField(help_text="Markdown, shown once the checks pass.")
    explanation_html = models.TextField(editable=False, blank=True)
    source_path = models.CharField(max_length=300, blank=True, editable=False)
    source_hash = models.CharField(max_length=64, blank=True, editable=False)
    published = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["lesson__order", "order", "id"]

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("labs:detail", kwargs={"slug": self.slug})


class LabProgress(models.Model):
    """One learner's go at one lab: their prediction, their experiment, the checks passed so far."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="lab_progress")
    lab = models.ForeignKey(Lab, on_delete=models.CASCADE, related_name="progress")
    # The prediction, graded once: the first answer is the one kept (as in practice).
    option = models.ForeignKey("quizzes.Option", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    prediction_correct = models.BooleanField(null=True)
    shown_order = models.JSONField(default=list, blank=True)
    shuffle_seed = models.CharField(max_length=32, blank=True)
    predicted_at = models.DateTimeField(null=True, blank=True)
    # The sandbox experiment running this lab (sandbox.Experiment's primary key); null before the lab starts.
    experiment_id = models.BigIntegerField(null=True, blank=True)
    # The last command of the lab's start (heal, then the starting policy); the checks count only what the mesh
    # did after the engine applied it, at `started_t` (experiment seconds).
    start_command_id = models.CharField(max_length=64, blank=True)
    started_t = models.FloatField(null=True, blank=True, help_text="Experiment seconds when the lab's steps began.")
    checks_state = models.JSONField(default=dict, blank=True)  # labs.checks.Progress.to_json()
    completed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "lab"], name="one_progress_per_lab")]
        verbose_name_plural = "lab progress"

    def __str__(self) -> str:
        return f"{self.user} on {self.lab}"

    @property
    def predicted(self) -> bool:
        return self.predicted_at is not None
