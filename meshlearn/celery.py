"""The Celery application: the broker is the same Redis the site uses (REDIS_URL)."""

import os

from celery import Celery

# Like wsgi.py: a worker started without DJANGO_SETTINGS_MODULE must not run with dev settings.
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "meshlearn.settings.production")

app = Celery("meshlearn")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
