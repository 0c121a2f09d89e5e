"""Development profile: the default for manage.py, with DEBUG. `bin/run` uses `local`, built on this one."""

from .base import *  # noqa: F403
from .env import env_bool
from .private_files import process_files_private, var_dir_private

DEBUG = env_bool("DJANGO_DEBUG", True)
process_files_private()  # files this process makes are 0600, the SQLite file's -wal and -shm included
var_dir_private(VAR_DIR)  # noqa: F405  (holds the SQLite file: 0700)
# Plain storage in development so pages work before collectstatic has run.
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405  (whitenoise warns when it is missing)
