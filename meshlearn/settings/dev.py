"""Development profile: the default for manage.py and `bin/run`."""

from .base import *  # noqa: F403
from .env import env_bool

DEBUG = env_bool("DJANGO_DEBUG", True)
VAR_DIR.mkdir(parents=True, exist_ok=True)  # noqa: F405  (holds the SQLite file)
# Plain storage in development so pages work before collectstatic has run.
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405  (whitenoise warns when it is missing)
