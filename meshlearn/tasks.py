"""Project-wide Celery tasks: a heartbeat that proves a worker is consuming the queue."""

from celery import shared_task


@shared_task(name="meshlearn.ping")
def ping() -> str:
    return "pong"
