"""A class on one machine: the profile `bin/run` uses. Development's comforts that leak nothing (SQLite in var/,
demo accounts, static files served by whitenoise without collectstatic, localhost hosts, plain HTTP), but DEBUG
off, so a learner who meets an error sees the site's error page, never a traceback or the settings.
`bin/run --dev` (or MESHLEARN_DEBUG=1) turns DEBUG on for development."""

from .dev import *  # noqa: F403
from .env import env_bool

DEBUG = env_bool("MESHLEARN_DEBUG", False)
# Without DEBUG whitenoise serves only what collectstatic gathered; let it find the files where they live.
WHITENOISE_USE_FINDERS = True
