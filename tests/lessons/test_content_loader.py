"""The lesson loader: idempotent, updates changed files, refuses bad files whole."""

from pathlib import Path

import pytest

from lessons.models import Lesson
from lessons.services import lessons_load
from meshlearn.content import ContentError

GOOD = """---
slug: {slug}
title: {title}
order: {order}
summary: About sidecars.
minutes: 5
objectives:
  - Explain the data path
---
## Data path

Text with a table:

| a | b |
|---|---|
| 1 | 2 |
"""


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.django_db
def test_loading_twice_gives_the_same_lessons(tmp_path):
    write(tmp_path, "01-a.md", GOOD.format(slug="a", title="A", order=1))
    write(tmp_path, "02-b.md", GOOD.format(slug="b", title="B", order=2))

    first = lessons_load(directory=tmp_path)
    snapshot = list(Lesson.objects.values_list("slug", "title", "order", "body_html"))
    second = lessons_load(directory=tmp_path)

    assert (first.created, first.updated) == (2, 0)
    assert (second.created, second.updated, second.unchanged) == (0, 0, 2)
    assert list(Lesson.objects.values_list("slug", "title", "order", "body_html")) == snapshot
    assert "<table>" in Lesson.objects.get(slug="a").body_html


@pytest.mark.django_db
def test_a_changed_file_updates_its_lesson(tmp_path):
    path = write(tmp_path, "01-a.md", GOOD.format(slug="a", title="Old title", order=1))
    lessons_load(directory=tmp_path)
    path.write_text(GOOD.format(slug="a", title="New title", order=1), encoding="utf-8")

    report = lessons_load(directory=tmp_path)

    assert report.updated == 1
    assert Lesson.objects.get(slug="a").title == "New title"
    assert Lesson.objects.count() == 1


@pytest.mark.parametrize(
    "text, problem",
    [
        ("no front matter\n", "must start with a front matter block"),
        ("---\nslug: a\ntitle: A\norder: 1\n", "front matter is never closed"),
        ("---\nslug: a\ntitle: [unclosed\norder: 1\n---\nbody\n", "invalid YAML at line 4"),
        ("---\nslug: a\norder: 1\n---\nbody\n", "missing required key(s): title"),
        ("---\nslug: a\ntitle: A\norder: 1\ncolour: red\n---\nbody\n", "unknown key(s): colour"),
        ("---\nslug: Not A Slug\ntitle: A\norder: 1\n---\nbody\n", "slug must be lowercase"),
        ("---\nslug: a\ntitle: A\norder: first\n---\nbody\n", "order must be a whole number"),
        ("---\nslug: a\ntitle: A\norder: 1\nobjectives: learn\n---\nbody\n", "objectives must be a list"),
        ("---\nslug: a\ntitle: A\norder: 1\n---\n\n", "has no lesson body"),
    ],
)
@pytest.mark.django_db
def test_a_malformed_file_is_refused_with_its_name_and_nothing_is_loaded(tmp_path, text, problem):
    write(tmp_path, "01-good.md", GOOD.format(slug="good", title="Good", order=1))
    write(tmp_path, "02-broken.md", text)

    with pytest.raises(ContentError) as error:
        lessons_load(directory=tmp_path)

    assert str(error.value).startswith("02-broken.md: ")
    assert problem in str(error.value)
    assert not Lesson.objects.exists()  # the good file was not half-loaded either


@pytest.mark.django_db
def test_a_bad_file_leaves_previously_loaded_lessons_untouched(tmp_path):
    write(tmp_path, "01-a.md", GOOD.format(slug="a", title="Kept", order=1))
    lessons_load(directory=tmp_path)
    write(tmp_path, "01-a.md", GOOD.format(slug="a", title="Changed", order=1))
    write(tmp_path, "02-b.md", GOOD.format(slug="a", title="Duplicate slug", order=2))

    with pytest.raises(ContentError, match="slug 'a' is already used by 01-a.md"):
        lessons_load(directory=tmp_path)

    assert list(Lesson.objects.values_list("title", flat=True)) == ["Kept"]


@pytest.mark.django_db
def test_non_utf8_file_is_refused(tmp_path):
    (tmp_path / "01-a.md").write_bytes(b"---\nslug: a\ntitle: \xff\n---\n")
    with pytest.raises(ContentError, match="01-a.md: is not UTF-8 text"):
        lessons_load(directory=tmp_path)


def test_load_course_command_reports_a_bad_file_and_exits_nonzero(tmp_path, settings, db):
    from django.core.management import CommandError, call_command

    write(tmp_path, "01-a.md", "---\nslug: a\n---\nbody\n")
    settings.COURSE_CONTENT_DIRS = {**settings.COURSE_CONTENT_DIRS, "lessons": tmp_path}
    with pytest.raises(CommandError, match=r"Nothing was loaded\. 01-a\.md: missing required key\(s\): order, title"):
        call_command("load_course")
