"""Instructor authoring of labs: edit the fields the content files hold, with the loader's own validation, and
preview the lab page as a learner sees it. The prediction is a practice question: edit it in Questions."""

from django import forms
from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from sandbox.mesh.runtime.commands import CommandError, parse_command
from sandbox.selectors import topology_get

from .checks import CheckError, check_to_json, parse_check, trigger_problems
from .content_files import MAX_CHECKS, MAX_STEPS, topology_graph
from .models import Lab, LabProgress
from .services import lab_save


class LabForm(forms.ModelForm):
    """The same rules as lab files: every command accepted by the engine on the lab's topology, every check
    in the grammar with its services and edges in that topology."""

    class Meta:
        model = Lab
        fields = "__all__"
        widgets = {
            "goal": forms.Textarea(attrs={"rows": 3}),
            "start_commands": forms.Textarea(attrs={"rows": 4, "cols": 100}),
            "steps": forms.Textarea(attrs={"rows": 14, "cols": 100}),
            "checks": forms.Textarea(attrs={"rows": 10, "cols": 100}),
        }

    def clean(self) -> dict:
        data = super().clean()
        name = data.get("topology")
        if not name:
            return data
        topology = topology_get(name)
        for index, command in enumerate(data.get("start_commands") or []):
            try:
                parse_command(command, topology)
            except CommandError as exc:
                self.add_error("start_commands", f"start[{index}].{exc.field or 'command'}: {exc.reason}")
        steps = data.get("steps")
        if not isinstance(steps, list) or not 1 <= len(steps) <= MAX_STEPS:
            self.add_error("steps", f'A list of 1 to {MAX_STEPS} steps, each {{"text": ..., "actions": [...]}}.')
        else:
            for index, step in enumerate(steps):
                if not isinstance(step, dict) or not isinstance(step.get("text"), str) or not step["text"].strip():
                    self.add_error("steps", f"steps[{index}]: needs a text")
                    continue
                for number, action in enumerate(step.get("actions") or []):
                    if not isinstance(action, dict) or not str(action.get("label", "")).strip():
                        self.add_error("steps", f"steps[{index}].actions[{number}]: needs a label and a command")
                        continue
                    try:
                        parse_command(action.get("command"), topology)
                    except CommandError as exc:
                        where = f"steps[{index}].actions[{number}].command.{exc.field or 'command'}"
                        self.add_error("steps", f"{where}: {exc.reason}")
        checks = data.get("checks")
        if not isinstance(checks, list) or not 1 <= len(checks) <= MAX_CHECKS:
            self.add_error("checks", f"A list of 1 to {MAX_CHECKS} checks.")
        else:
            services, edges = topology_graph(topology)
            try:
                specs = [
                    parse_check(check, field=f"checks[{index}]", services=services, edges=edges)
                    for index, check in enumerate(checks)
                ]
                data["checks"] = [check_to_json(spec) for spec in specs]
                for problem in trigger_problems(steps if isinstance(steps, list) else [], specs):
                    self.add_error("checks", problem)  # each check waits for the buttons of its step
            except CheckError as exc:
                self.add_error("checks", str(exc))
        return data


@admin.register(Lab)
class LabAdmin(admin.ModelAdmin):
    form = LabForm
    list_display = ("title", "lesson", "order", "topology", "published", "updated_at", "view_link")
    list_editable = ("order", "published")
    list_display_links = ("title",)
    list_filter = ("published", "topology", "lesson")
    search_fields = ("title", "slug", "goal", "explanation")
    prepopulated_fields = {"slug": ("title",)}
    readonly_fields = ("prediction_link", "source_path", "updated_at")
    fieldsets = (
        (None, {"fields": ("title", "slug", "lesson", "order", "published", "topology", "goal")}),
        (
            "Prediction",
            {
                "fields": ("prediction", "prediction_link"),
                "description": "A practice question (options with feedback, exactly one correct).",
            },
        ),
        (
            "Starting policy, steps and checks",
            {
                "fields": ("start_commands", "steps", "checks"),
                "description": 'JSON. Commands use the sandbox\'s vocabulary, e.g. {"action": "fail", "service": '
                '"b", "percent": 50}. A check: {"name": "...", "says": "...", "for": 5, '
                '"when": ["effective_success at entry >= 99%"]}.',
            },
        ),
        ("Explanation", {"fields": ("explanation",), "description": "Markdown, shown once the checks pass."}),
        ("Source", {"fields": ("source_path", "updated_at"), "classes": ("collapse",)}),
    )

    @admin.display(description="Edit the prediction")
    def prediction_link(self, lab: Lab) -> str:
        if not lab.prediction_id:
            return "Choose a question first."
        return format_html(
            '<a href="{}">{}</a> · <a href="{}">preview</a>',
            reverse("admin:quizzes_question_change", args=[lab.prediction_id]),
            lab.prediction.key,
            reverse("admin:quizzes_question_preview", args=[lab.prediction_id]),
        )

    @admin.display(description="Page")
    def view_link(self, lab: Lab) -> str:
        return format_html('<a href="{}">preview</a>', lab.get_absolute_url())

    def save_model(self, request, obj: Lab, form, change: bool) -> None:
        lab_save(lab=obj)


@admin.register(LabProgress)
class LabProgressAdmin(admin.ModelAdmin):
    list_display = ("user", "lab", "prediction_correct", "completed_at")
    list_filter = ("lab", "prediction_correct")
    search_fields = ("user__username", "lab__title")
    readonly_fields = [field.name for field in LabProgress._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
