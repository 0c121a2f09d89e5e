"""Everything `bin/run` does before the servers start, in one process and skipping what is done:
migrations (only when some are unapplied), the course (unchanged files are skipped by their hash),
the demo accounts (created when missing; existing ones keep their password), and the modes of var/ and the
SQLite files (this account's only, also when an older version left them readable)."""

import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from meshlearn.content import ContentError
from meshlearn.course_loading import course_load
from meshlearn.services import demo_accounts_ensure
from meshlearn.settings.private_files import sqlite_files_private, var_dir_private


class Command(BaseCommand):
    help = "Prepare the database for bin/run: migrate if needed, load the course, ensure the demo accounts."

    def handle(self, *args, **options) -> None:
        self.step("Database", self.migrate)
        self.step("Course", self.load_course)
        self.step("Demo accounts (development only)", self.demo_accounts)
        self.step("Private files", self.private_files)

    def step(self, title: str, action) -> None:
        self.stdout.write(f"==> {title} ...", ending="")
        self.stdout.flush()
        started = time.monotonic()
        lines = action()
        self.stdout.write(f" {lines[0]} ({time.monotonic() - started:.1f} s)")
        for line in lines[1:]:
            self.stdout.write(f"    {line}")

    def migrate(self) -> list[str]:
        executor = MigrationExecutor(connection)
        plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
        if not plan:
            return ["up to date"]
        call_command("migrate", interactive=False, verbosity=0)
        return [f"applied {len(plan)} migrations"]

    def load_course(self) -> list[str]:
        try:
            reports = course_load()
        except ContentError as exc:
            raise CommandError(f"Nothing was loaded. {exc}") from exc
        return ["; ".join(f"{label.lower()}: {report}" for label, report in reports.items())]

    def demo_accounts(self) -> list[str]:
        accounts = demo_accounts_ensure(reset_passwords=False)
        lines = [f"{a.role:<10} username: {a.username:<11} password: {a.password}" for a in accounts]
        return ["ready (manage.py demo_accounts resets their passwords)", *lines]

    def private_files(self) -> list[str]:
        var_dir_private(Path(settings.VAR_DIR))
        database = settings.DATABASES["default"]
        if database["ENGINE"] != "django.db.backends.sqlite3":
            return [f"{settings.VAR_DIR} is 0700"]
        files = sqlite_files_private(Path(database["NAME"]))
        return [f"{settings.VAR_DIR} is 0700; {', '.join(path.name for path in files)} 0600"]
