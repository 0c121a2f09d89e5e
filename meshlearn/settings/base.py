"""Settings shared by every profile. Each value comes from the environment where it varies."""

from datetime import timedelta
from pathlib import Path

import dj_database_url

from .env import env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = Path(env_str("MESHLEARN_VAR_DIR", str(BASE_DIR / "var")))

# ---------------------------------------------------------------- core
SECRET_KEY = env_str("DJANGO_SECRET_KEY", "dev-insecure-secret-key-change-me-for-production-0123456789")
DEBUG = False
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "template_partials",
    "axes",
    "csp",
    "meshlearn.apps.MeshlearnConfig",
    "lessons",
    "quizzes",
    "sandbox",
    "labs",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "meshlearn.middleware.FormCharsetMiddleware",  # before anything parses a form
    "meshlearn.middleware.RequestBodyLimitMiddleware",  # before CSRF, which parses the body
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "meshlearn.middleware.PermissionsPolicyMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "meshlearn.middleware.DatabaseBusyMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "meshlearn.urls"
WSGI_APPLICATION = "meshlearn.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    }
]

# ---------------------------------------------------------------- data
# SQLite file by default; PostgreSQL (or anything dj-database-url knows) through DATABASE_URL.
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
        # The site is served by an ASGI server (uvicorn): each request may run in a different thread, so a
        # persistent connection would be left open per thread. Connections are opened per request.
        conn_max_age=0,
    )
}
# Waits for a lock are bounded everywhere: past them a request gets a clear 503 "try again"
# (meshlearn.middleware.DatabaseBusyMiddleware), never a hang.
DATABASE_LOCK_TIMEOUT_SECONDS = 10
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"]["OPTIONS"] = {
        # A transaction takes the write lock when it begins, so it waits in line (up to the timeout)
        # instead of failing with "database is locked" when it upgrades from reading to writing.
        "transaction_mode": "IMMEDIATE",
        "timeout": DATABASE_LOCK_TIMEOUT_SECONDS,
        # WAL: readers never wait for the writer, nor the writer for readers.
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
elif DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    _options["options"] = (
        f"{_options.get('options', '')} -c lock_timeout={DATABASE_LOCK_TIMEOUT_SECONDS * 1000}".strip()
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


def _local_redis_url() -> str:
    """bin/run's own Redis, which asks for the password it keeps in var/: a manage.py run by hand beside it
    finds both."""
    port = env_str("MESHLEARN_REDIS_PORT", "6379")
    try:
        password = (VAR_DIR / "redis-password").read_text().strip()
    except OSError:  # no bin/run here yet: a Redis without a password
        password = ""
    return f"redis://:{password}@127.0.0.1:{port}/0" if password else f"redis://127.0.0.1:{port}/0"


REDIS_URL = env_str("REDIS_URL", _local_redis_url())

# ---------------------------------------------------------------- auth
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out login before checking the password
    "django.contrib.auth.backends.ModelBackend",
]
# Login throttling (django-axes): 10 failed logins for one account, or from one address, lock that
# account or address out for 15 minutes (the right password included); a success resets the count.
AXES_FAILURE_LIMIT = 10
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_DISABLE_ACCESS_LOG = True  # failures are recorded; a successful login writes nothing more
# The address counted is the connection's (REMOTE_ADDR), never a header any client can write. Behind a proxy,
# uvicorn sets it from X-Forwarded-For only for the proxies in MESHLEARN_FORWARDED_ALLOW_IPS (the Procfile).
AXES_IPWARE_META_PRECEDENCE_ORDER = ("REMOTE_ADDR",)
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "lessons:course"
LOGOUT_REDIRECT_URL = "lessons:course"

# ---------------------------------------------------------------- i18n
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# ---------------------------------------------------------------- static files
STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("DJANGO_STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# ---------------------------------------------------------------- celery
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_TASK_TIME_LIMIT = 15 * 60  # a backstop behind each task's own I/O timeouts
CELERY_TASK_SOFT_TIME_LIMIT = 14 * 60
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# One experiment is one long task on its own queue, so a busy sandbox never delays the site's short tasks.
CELERY_TASK_ROUTES = {"sandbox.run_experiment": {"queue": "sandbox"}}

# ---------------------------------------------------------------- sandbox (live experiments)
# Limits that keep a shared machine healthy. Seconds unless named otherwise.
SANDBOX_RUNTIME = env_str("MESHLEARN_SANDBOX_RUNTIME", "process")  # process | in_process
SANDBOX_RATE = float(env_str("MESHLEARN_SANDBOX_RATE", "20"))  # the load each experiment starts with, req/s
# One active (queued or running) experiment per learner is not a setting: a unique constraint on the
# experiment table holds it, so two tabs or a double click cannot get around it.
SANDBOX_IDLE_TIMEOUT = int(env_str("MESHLEARN_SANDBOX_IDLE_TIMEOUT", "120"))  # no page open and no command
SANDBOX_LIFETIME = int(env_str("MESHLEARN_SANDBOX_LIFETIME", str(20 * 60)))  # absolute, however busy
SANDBOX_WORKER_CAPACITY = int(env_str("MESHLEARN_SANDBOX_WORKER_CAPACITY", "4"))  # experiments per worker
SANDBOX_TOTAL_CAPACITY = int(env_str("MESHLEARN_SANDBOX_TOTAL_CAPACITY", str(SANDBOX_WORKER_CAPACITY)))  # all workers
SANDBOX_STARTS_PER_WINDOW = int(env_str("MESHLEARN_SANDBOX_STARTS_PER_WINDOW", "6"))  # starts per learner ...
SANDBOX_START_WINDOW = 10 * 60  # ... in this many seconds
SANDBOX_HEARTBEAT_INTERVAL = 5  # the task writes a heartbeat this often
SANDBOX_HEARTBEAT_TIMEOUT = 30  # the janitor reaps an experiment whose heartbeat is older than this
SANDBOX_QUEUE_TIMEOUT = 60 * 60  # a queued experiment that never started by then failed
SANDBOX_VIEWER_TTL = 15  # an open page renews its presence at least this often
# Live (server-sent events) streams open at once; beyond them a page polls (sandbox/stream_slots.py).
SANDBOX_STREAMS_PER_LEARNER = int(env_str("MESHLEARN_SANDBOX_STREAMS_PER_LEARNER", "4"))
SANDBOX_STREAMS_PER_EXPERIMENT = int(env_str("MESHLEARN_SANDBOX_STREAMS_PER_EXPERIMENT", "4"))
SANDBOX_STREAM_MAX_SECONDS = 5 * 60  # a stream then ends and the browser reconnects: nothing lives forever
SANDBOX_STREAM_MAXLEN = 600  # entries kept per stream (about ten minutes of snapshots)
SANDBOX_STREAM_TTL = 60 * 60  # streams expire this long after the experiment ended
# Celery's limits are a backstop behind the experiment's own deadlines (idle, lifetime).
SANDBOX_TASK_SOFT_TIME_LIMIT = SANDBOX_LIFETIME + 120
SANDBOX_TASK_TIME_LIMIT = SANDBOX_LIFETIME + 180
# acks_late: an unacknowledged message is redelivered after the visibility timeout. A running experiment
# must never be: the timeout sits above the longest a task can live, and the task also refuses to run an
# experiment that is no longer queued.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": SANDBOX_TASK_TIME_LIMIT + 30 * 60}
CELERY_BEAT_SCHEDULE = {
    "sandbox-janitor": {"task": "sandbox.janitor", "schedule": 30.0},
}

# ---------------------------------------------------------------- course content
COURSE_CONTENT_DIRS = {
    "lessons": BASE_DIR / "lessons" / "content",
    "quizzes": BASE_DIR / "quizzes" / "content",
    "labs": BASE_DIR / "labs" / "content",
}

# ---------------------------------------------------------------- request limits
# Learner forms are small: a body above REQUEST_BODY_MAX_BYTES is refused with 413 before it is read
# (meshlearn.middleware.request_body_limit says which cap applies; views cap lower with @body_limit; under
# ASGI meshlearn.edge refuses before Django reads a byte). The admin keeps Django's limits under a ceiling:
# 1 MB of form fields (a long lesson body fits), uploads as its import form states, nothing above 16 MB.
REQUEST_BODY_MAX_BYTES = 64 * 1024
ADMIN_REQUEST_BODY_MAX_BYTES = 16 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024

# ---------------------------------------------------------------- browser policies
# Scripts, styles, images and connections from this site only (htmx is served from our static
# files); no inline script or style, no frames, no plugins.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
# Powerful browser features the site never uses are switched off for it and anything it embeds.
PERMISSIONS_POLICY = (
    "accelerometer=(), camera=(), display-capture=(), geolocation=(), gyroscope=(), magnetometer=(), "
    "microphone=(), midi=(), payment=(), usb=()"
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "INFO"},
    "loggers": {"axes": {"level": "WARNING"}},  # a lockout is a warning; each login is not news
}
