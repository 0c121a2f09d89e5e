"""A list of short lines (objectives, tags, common mistakes): stored as JSON, edited one line per item.

The model field guarantees the shape wherever a value comes from (admin, imports, code that calls
full_clean): a list of non-empty single-line texts, each within a length and free of the characters
the field forbids. The admin edits it as a textarea, never as a raw JSON box.
"""

from django import forms
from django.core.exceptions import ValidationError
from django.db import models


def lines_problem(value: object, *, max_length: int, forbidden: str = "") -> str | None:
    """What is wrong with a value that should be a list of short lines, in words an author can act on."""
    if not isinstance(value, list):
        return f"must be a list of lines, got {type(value).__name__}"
    for number, line in enumerate(value, start=1):
        if not isinstance(line, str):
            return f"line {number} must be text, got {type(line).__name__}"
        if not line.strip():
            return f"line {number} is empty"
        if "\n" in line or "\r" in line:
            return f"line {number} holds a line break; write one item per line"
        if len(line) > max_length:
            return f"line {number} is {len(line)} characters long; at most {max_length}"
        bad = sorted({ch for ch in line if ch in forbidden})
        if bad:
            return f"line {number} contains {' and '.join(repr(ch) for ch in bad)}, which cannot be used here"
    return None


class LinesFormField(forms.CharField):
    widget = forms.Textarea(attrs={"rows": 4, "cols": 60})

    def __init__(self, *, max_line_length: int, forbidden: str = "", **kwargs) -> None:
        kwargs.pop("encoder", None), kwargs.pop("decoder", None)
        self.max_line_length, self.forbidden = max_line_length, forbidden
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, list):
            return "\n".join(str(item) for item in value)
        return value

    def to_python(self, value) -> list[str]:
        if isinstance(value, list):
            return value
        text = super().to_python(value)
        return [line.strip() for line in text.splitlines() if line.strip()]

    def validate(self, value) -> None:
        super().validate(value)
        problem = lines_problem(value, max_length=self.max_line_length, forbidden=self.forbidden)
        if problem:
            raise ValidationError(problem.capitalize() + ".", code="invalid_lines")

    def has_changed(self, initial, data) -> bool:
        return self.to_python(initial or []) != self.to_python(data)


class LinesField(models.JSONField):
    def __init__(self, *args, max_line_length: int = 300, forbidden: str = "", **kwargs) -> None:
        self.max_line_length, self.forbidden = max_line_length, forbidden
        kwargs.setdefault("default", list)
        kwargs.setdefault("blank", True)
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["max_line_length"] = self.max_line_length
        if self.forbidden:
            kwargs["forbidden"] = self.forbidden
        return name, path, args, kwargs

    def validate(self, value, model_instance) -> None:
        super().validate(value, model_instance)
        problem = lines_problem(value, max_length=self.max_line_length, forbidden=self.forbidden)
        if problem:
            raise ValidationError(problem.capitalize() + ".", code="invalid_lines")

    def formfield(self, **kwargs):
        defaults = {"form_class": LinesFormField, "max_line_length": self.max_line_length, "forbidden": self.forbidden}
        return models.Field.formfield(self, **{**defaults, **kwargs})
