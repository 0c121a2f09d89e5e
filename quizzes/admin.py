"""Instructor authoring and analysis of questions: inline options and steps with validation, a
learner-eye preview, GIFT/Aiken import and export, and item statistics per practice set."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from lessons.models import Lesson
from meshlearn.admin_mixins import LearnerByNameMixin
from meshlearn.content import ContentError
from meshlearn.htmx import HtmxHttpRequest

from . import exchange, selectors, services, statistics_report
from .formats.registry import FORMATS
from .formats.types import OptionData, QuestionData, QuestionFormat
from .importing import MAX_IMPORT_BYTES, import_file_check
from .models import Attempt, Option, Question, QuestionImport, Response, ReviewCard, SolutionStep
from .validation import question_problems


class OptionFormSet(BaseInlineFormSet):
    """The same rules as content files and imports: at least two options, exactly one correct,
    no option letters in authored text, sizes the database can hold."""

    def clean(self) -> None:
        super().clean()
        kept = [form.cleaned_data for form in self.forms if form.cleaned_data and not form.cleaned_data.get("DELETE")]
        if len(kept) < 2:
            raise ValidationError("Add at least two options.")
        correct = sum(bool(data.get("is_correct")) for data in kept)
        if correct != 1:
            raise ValidationError(f"Mark exactly one option as correct ({correct} are marked).")
        question = self.instance  # carries the parent form's values (saved with commit=False)
        problems = question_problems(
            QuestionData(
                key=question.key,
                stem=question.stem,
                quick_check=question.quick_check,
                tags=list(question.tags or []),
                difficulty=question.difficulty,
                general_feedback=question.general_feedback,
                common_mistakes=list(question.common_mistakes or []),
                options=[
                    OptionData(
                        text=data["text"], correct=bool(data.get("is_correct")), feedback=data.get("feedback", "")
                    )
                    for data in kept
                ],
            )
        )
        if problems:
            raise ValidationError(f"This question {problems[0]}.")


class OptionInline(admin.StackedInline):  # stacked: a table of long texts is cut off on a phone
    model = Option
    formset = OptionFormSet
    fields = ("order", "text", "is_correct", "feedback")
    extra = 0
    min_num = 2

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        if db_field.name == "feedback":
            kwargs["widget"] = forms.Textarea(attrs={"rows": 2, "class": "vLargeTextField"})
        return super().formfield_for_dbfield(db_field, request, **kwargs)


class SolutionStepInline(admin.StackedInline):
    model = SolutionStep
    fields = ("order", "title", "body")
    extra = 0


class ImportForm(forms.Form):
    file = forms.FileField(
        help_text=f"A GIFT (.gift, .txt) or Aiken (.txt) file, UTF-8, up to {MAX_IMPORT_BYTES // (1024 * 1024)} MB."
    )
    format = forms.ChoiceField(choices=[(declared.name, declared.label) for declared in FORMATS.values()])
    lesson = forms.ModelChoiceField(
        queryset=Lesson.objects.all(),
        required=False,
        help_text="For questions whose $CATEGORY is not a lesson (Moodle's categories), or that have none, "
        "and every Aiken question.",
    )
    refuse_unsupported = forms.BooleanField(
        required=False,
        label="Refuse the whole file if any question would be left out",
        help_text="Otherwise every good question is imported and each other one (malformed, or of a type that "
        "cannot be practised) is listed by line with the reason.",
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        try:
            import_file_check(size=upload.size, filename=upload.name)
        except ContentError as exc:
            raise ValidationError(f"Nothing was imported. {exc}.") from exc
        return upload


IMPORT_FORM_OVERHEAD = 64 * 1024  # the form's other fields and multipart boundaries


def _declared_size(request: HttpRequest) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


def _export_action(declared: QuestionFormat):
    """The changelist action "Export selected questions as <format>", one per format (named export_<name>)."""

    @admin.action(description=f"Export selected questions as {declared.label}")
    def export(modeladmin: "QuestionAdmin", request: HttpRequest, queryset) -> HttpResponse | None:
        return modeladmin._export(request, queryset, declared.name)

    export.__name__ = f"export_{declared.name}"
    return export


@admin.register(Question)
class QuestionAdmin(admin.ModelAdmin):
    list_display = ("key", "lesson", "difficulty", "published", "option_count", "preview_link")
    list_filter = ("lesson", "difficulty", "published")
    search_fields = ("key", "stem", "options__text")
    list_select_related = ("lesson",)
    inlines = [OptionInline, SolutionStepInline]
    actions = [_export_action(declared) for declared in FORMATS.values()]
    fieldsets = (
        (None, {"fields": ("key", "lesson", "stem", "difficulty", "tags", "published", "order")}),
        ("Solution", {"fields": ("quick_check", "common_mistakes", "general_feedback")}),
    )
    change_list_template = "admin/quizzes/question/change_list.html"

    def get_queryset(self, request):
        from django.db.models import Count

        # distinct: a search across options__text joins options once per match, which multiplied the count
        return super().get_queryset(request).annotate(_option_count=Count("options", distinct=True))

    @admin.display(description="Options", ordering="_option_count")
    def option_count(self, question: Question) -> int:
        return question._option_count

    @admin.display(description="Preview")
    def preview_link(self, question: Question) -> str:
        return format_html('<a href="{}">preview</a>', reverse("admin:quizzes_question_preview", args=[question.pk]))

    def save_model(self, request, obj: Question, form, change: bool) -> None:
        services.question_save(question=obj)

    def get_urls(self):
        own = [
            path("<int:pk>/preview/", self.admin_site.admin_view(self.preview_view), name="quizzes_question_preview"),
            path("import/", self.admin_site.admin_view(self.import_view), name="quizzes_question_import"),
            path(
                "import/<int:pk>/",
                self.admin_site.admin_view(self.import_status_view),
                name="quizzes_question_import_status",
            ),
            path(
                "import/<int:pk>/confirm/",
                self.admin_site.admin_view(self.import_confirm_view),
                name="quizzes_question_import_confirm",
            ),
            path("statistics/", self.admin_site.admin_view(self.statistics_index), name="quizzes_question_statistics"),
            path(
                "statistics/<slug:slug>/",
                self.admin_site.admin_view(self.statistics_view),
                name="quizzes_question_statistics_lesson",
            ),
        ]
        return own + super().get_urls()

    # ------------------------------------------------------------------ preview

    def preview_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        """The question as a learner sees it, then the result after choosing the first wrong option."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        question = get_object_or_404(Question, pk=pk)
        view, result = selectors.question_preview(question_id=question.pk)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Preview: {question.key}",
            "question": question,
            "view": view,
            "result": result,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/quizzes/question/preview.html", context)

    # ------------------------------------------------------------------ import / export

    def import_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        if request.method == "POST" and _declared_size(request) > MAX_IMPORT_BYTES + IMPORT_FORM_OVERHEAD:
            # Refused on its declared size: nothing is parsed or stored (Django spools large uploads to disk).
            refused = (
                f"Nothing was imported: files up to {MAX_IMPORT_BYTES // (1024 * 1024)} MB can be imported. "
                "Split the file into smaller files."
            )
            context = {
                **self.admin_site.each_context(request),
                "title": "Import questions",
                "form": ImportForm(),
                "refused": refused,
                "opts": self.model._meta,
            }
            return TemplateResponse(request, "admin/quizzes/question/import.html", context, status=413)
        form = ImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            upload = form.cleaned_data["file"]
            question_import = services.question_import_start(
                user=request.user,
                content=upload.read(),
                filename=upload.name,
                file_format=form.cleaned_data["format"],
                lesson=form.cleaned_data["lesson"],
                refuse_unsupported=form.cleaned_data["refuse_unsupported"],
            )
            return redirect(question_import)
        context = {
            **self.admin_site.each_context(request),
            "title": "Import questions",
            "form": form,
            "recent": QuestionImport.objects.select_related("created_by")[:5],
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/quizzes/question/import.html", context)

    def import_status_view(self, request: HtmxHttpRequest, pk: int) -> HttpResponse:
        """Progress while a worker imports the file (htmx polls the fragment), then the result."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        question_import = get_object_or_404(QuestionImport.objects.select_related("lesson"), pk=pk)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Import of {question_import.filename}",
            "question_import": question_import,
            "report": question_import.report,
            "opts": self.model._meta,
        }
        template = "admin/quizzes/question/import_status.html"
        if request.htmx:
            template += "#progress"
        return TemplateResponse(request, template, context)

    def import_confirm_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        question_import = get_object_or_404(QuestionImport, pk=pk)
        services.question_import_confirm(question_import=question_import)
        return redirect(question_import)

    def _export(self, request: HttpRequest, queryset, file_format: str) -> HttpResponse | None:
        try:
            text = exchange.questions_export(questions=queryset, file_format=file_format)
        except ValueError as exc:  # a question the format cannot express: say which and why
            self.message_user(request, f"Nothing was exported. {exc}", messages.ERROR)
            return None
        response = HttpResponse(text, content_type="text/plain; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="meshlearn-questions.{file_format}.txt"'
        return response

    # ------------------------------------------------------------------ statistics

    def statistics_index(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        lessons = Lesson.objects.all()
        context = {
            **self.admin_site.each_context(request),
            "title": "Question statistics",
            "lessons": lessons,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/quizzes/question/statistics_index.html", context)

    def statistics_view(self, request: HttpRequest, slug: str) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        lesson = get_object_or_404(Lesson, slug=slug)
        report = statistics_report.lesson_statistics(lesson=lesson)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Statistics: {lesson.title}",
            "lesson": lesson,
            "report": report,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/quizzes/question/statistics.html", context)


@admin.register(Attempt)
class AttemptAdmin(LearnerByNameMixin, admin.ModelAdmin):
    list_display = ("id", "user", "kind", "lesson", "started_at", "finished_at")
    list_filter = ("kind", "lesson")
    search_fields = ("user__username",)


@admin.register(Response)
class ResponseAdmin(admin.ModelAdmin):
    list_display = ("attempt", "question", "option", "is_correct", "answered_at")
    list_filter = ("is_correct", "question__lesson")
    list_select_related = ("attempt", "question", "option")


@admin.register(ReviewCard)
class ReviewCardAdmin(LearnerByNameMixin, admin.ModelAdmin):
    list_display = ("user", "question", "due", "lapses")
    list_select_related = ("user", "question")
