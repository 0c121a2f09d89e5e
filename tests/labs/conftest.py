"""The sandbox's real Celery workers and ASGI server, for the labs that run on the live sandbox."""

from tests.sandbox.conftest import asgi_server, clean_redis, wait_for, workers  # noqa: F401
