"""Instructors watch every experiment and can stop any; the records themselves are the workers' to write."""

from django.contrib import admin, messages

from . import services
from .models import Experiment, ExperimentCommand, ExperimentEvent


class ExperimentCommandInline(admin.TabularInline):
    model = ExperimentCommand
    fields = ("sent_at", "description", "outcome", "answer")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Experiment)
class ExperimentAdmin(admin.ModelAdmin):
    list_display = ("id", "owner", "topology", "status", "end_reason", "worker_host", "heartbeat_at", "created_at")
    list_filter = ("status", "topology", "worker_host")
    search_fields = ("owner__username",)
    readonly_fields = (
        "owner",
        "topology",
        "runtime",
        "status",
        "end_reason",
        "worker_host",
        "pgid",
        "heartbeat_at",
        "created_at",
        "started_at",
        "ended_at",
        "result",
    )
    inlines = [ExperimentCommandInline]
    actions = ["stop_experiments"]

    def has_add_permission(self, request) -> bool:
        return False  # experiments start from the sandbox page, where the limits apply

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # read-only; stopping is the action below

    @admin.action(description="Stop the selected experiments", permissions=["view"])
    def stop_experiments(self, request, queryset) -> None:
        stopped, unreached = 0, 0
        for experiment in queryset.filter(status__in=Experiment.ACTIVE):
            try:
                services.experiment_stop(experiment=experiment)
            except services.SandboxUnavailable:
                unreached += 1
                continue
            stopped += 1
        self.message_user(request, f"Asked {stopped} experiment(s) to stop.", messages.SUCCESS)
        if unreached:
            self.message_user(
                request,
                f"{unreached} experiment(s) could not be told to stop: Redis is not "
                f"answering. Try again in a few seconds.",
                messages.ERROR,
            )


@admin.register(ExperimentEvent)
class ExperimentEventAdmin(admin.ModelAdmin):
    list_display = ("experiment", "kind", "t")
    list_filter = ("kind",)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
