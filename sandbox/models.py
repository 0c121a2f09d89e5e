"""Experiments: one learner's running mesh, its commands and what it reported. The database is the record;
Redis only carries the live messages (losing Redis loses no record)."""

import uuid

from django.conf import settings
from django.db import models
from django.urls import reverse

TOPOLOGIES = [("pair", "pair: a calls b"), ("shop", "shop: a frontend, a catalog, a cart and payments")]


class Experiment(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued", "waiting for a free slot"
        STARTING = "starting", "starting"
        RUNNING = "running", "running"
        STOPPING = "stopping", "stopping"
        FINISHED = "finished", "finished"
        FAILED = "failed", "failed"

    # The statuses of an experiment that holds (or waits for) a slot; a learner has at most one.
    ACTIVE = (Status.QUEUED, Status.STARTING, Status.RUNNING, Status.STOPPING)
    # The statuses in which a worker owns the experiment and writes a heartbeat.
    OWNED = (Status.STARTING, Status.RUNNING, Status.STOPPING)

    class Runtime(models.TextChoices):
        PROCESS = "process", "one process per component"
        IN_PROCESS = "in_process", "one event loop"

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="experiments")
    topology = models.CharField(max_length=32, choices=TOPOLOGIES)
    runtime = models.CharField(max_length=16, choices=Runtime.choices, default=Runtime.PROCESS)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    # How it ended: completed | stopped | idle | deadline (finished), or why it failed ("worker lost").
    end_reason = models.CharField(max_length=500, blank=True)
    worker_host = models.CharField(max_length=255, blank=True, help_text="The Celery worker that runs it.")
    pgid = models.IntegerField(null=True, blank=True, help_text="The mesh's process group on the worker host.")
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    # Written once at the end: the engine's result, the metrics history and the last snapshot, so the page
    # still shows the final numbers after the Redis streams expired.
    result = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # Two tabs or a double click cannot give a learner two experiments.
            models.UniqueConstraint(
                fields=["owner"],
                condition=models.Q(status__in=["queued", "starting", "running", "stopping"]),
                name="sandbox_one_active_experiment_per_learner",
            )
        ]

    def __str__(self) -> str:
        return f"{self.topology} #{self.pk} ({self.status})"

    def get_absolute_url(self) -> str:
        return reverse("sandbox:experiment", args=[self.pk])

    @property
    def is_active(self) -> bool:
        return self.status in self.ACTIVE


class ExperimentCommand(models.Model):
    """A command the learner sent, and what the engine answered (applied, or refused with its reason)."""

    class Outcome(models.TextChoices):
        SENT = "sent", "sent"
        APPLIED = "applied", "applied"
        REFUSED = "refused", "refused"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="commands")
    command = models.JSONField()
    description = models.CharField(max_length=300, help_text="The command in plain words.")
    sent_at = models.DateTimeField(auto_now_add=True)
    outcome = models.CharField(max_length=16, choices=Outcome.choices, default=Outcome.SENT)
    answer = models.TextField(blank=True, help_text="What the engine said it did, or why it refused.")
    t = models.FloatField(null=True, blank=True, help_text="Seconds into the experiment when it was applied.")

    class Meta:
        ordering = ["sent_at"]

    def __str__(self) -> str:
        return self.description


class ExperimentEvent(models.Model):
    """A notable event the experiment reported (not the per-second snapshots): a finding, a process exit,
    a NACK, a command applied or refused, the end. Kept for the page after the streams expired."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="events")
    kind = models.CharField(max_length=16)
    t = models.FloatField(default=0.0)
    data = models.JSONField()

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.kind} at {self.t:.1f}s"
