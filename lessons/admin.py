"""Instructor authoring of lessons: edit Markdown, reorder in the list, preview the rendered page."""

from django.contrib import admin
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from meshlearn.admin_mixins import LearnerByNameMixin

from .models import Lesson, LessonCompletion
from .services import lesson_save


@admin.register(Lesson)
class LessonAdmin(admin.ModelAdmin):
    list_display = ("title", "order", "published", "minutes", "updated_at", "view_link")
    list_editable = ("order", "published")
    list_display_links = ("title",)
    search_fields = ("title", "slug", "summary", "body_markdown")
    list_filter = ("published",)
    prepopulated_fields = {"slug": ("title",)}
    readonly_fields = ("preview", "source_path", "updated_at")
    fieldsets = (
        (None, {"fields": ("title", "slug", "order", "published", "minutes", "summary", "objectives")}),
        (
            "Body",
            {
                "fields": ("body_markdown",),
                "description": "Markdown; script, event handlers and javascript: links are removed.",
            },
        ),
        ("Preview", {"fields": ("preview",), "description": "Rendered as learners see it, after the last save."}),
        ("Source", {"fields": ("source_path", "updated_at"), "classes": ("collapse",)}),
    )

    @admin.display(description="Rendered body")
    def preview(self, lesson: Lesson) -> str:
        if not lesson.pk:
            return "Save the lesson to see a preview."
        # body_html was sanitised by lesson_save; it is safe to show as is.
        return format_html('<div class="lesson-preview">{}</div>', mark_safe(lesson.body_html))

    @admin.display(description="Page")
    def view_link(self, lesson: Lesson) -> str:
        return format_html('<a href="{}">view</a>', lesson.get_absolute_url())

    def save_model(self, request, obj: Lesson, form, change: bool) -> None:
        lesson_save(lesson=obj)


@admin.register(LessonCompletion)
class LessonCompletionAdmin(LearnerByNameMixin, admin.ModelAdmin):
    list_display = ("user", "lesson", "completed_at")
    list_filter = ("lesson",)
    search_fields = ("user__username", "lesson__title")
