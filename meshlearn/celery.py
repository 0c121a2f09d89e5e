"""The Celery application: the broker is the same Redis the site uses (REDIS_URL)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meshlearn.settings.dev")

app = Celery("meshlearn")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
