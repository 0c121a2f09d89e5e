"""A restart of the site (Redis with it) loses the Celery messages of queued experiments, not their records:
at worker start and from the janitor each queued experiment whose message is gone is sent again, once, and a
real worker runs it."""

from datetime import timedelta

import pytest
from django.utils import timezone

from sandbox import requeue, services
from sandbox.models import Experiment
from sandbox.tasks import janitor, run_experiment

from .conftest import experiment_fresh, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
BROKER_QUEUE = "sandbox"  # the Redis list the broker keeps the sandbox queue's messages in


def queued_a_while_ago(experiment: Experiment) -> None:
    """Past the grace in which a first message may still be on its way."""
    Experiment.objects.filter(pk=experiment.pk).update(
        created_at=timezone.now() - timedelta(seconds=requeue.GRACE_SECONDS + 30)
    )


def redis_restarted(client) -> None:
    """What a restart of Redis loses of the sandbox (it runs with --save ""): the queue's messages and every
    sandbox key. The database keeps the records."""
    client.delete(BROKER_QUEUE, *client.scan_iter("sandbox:*"))


def test_a_queued_record_with_no_message_is_run_when_a_worker_starts(workers, learner, settings):
    settings.SANDBOX_RUNTIME = "in_process"
    stranded = Experiment.objects.create(owner=learner, topology="pair", runtime="in_process")
    queued_a_while_ago(stranded)
    assert workers.started == {}  # no message anywhere: its message died with the previous Redis
    workers.start("w1")
    running = wait_for(lambda: (e := experiment_fresh(stranded.pk)).status == "running" and e, what="it to run")
    assert running.worker_host == workers.node("w1")


def test_the_janitor_resends_only_a_lost_message_and_only_once(workers, learner, clean_redis, settings):
    settings.SANDBOX_RUNTIME = "in_process"
    waiting = services.experiment_start(user=learner, topology="pair")  # no worker yet: its message waits
    assert clean_redis.llen(BROKER_QUEUE) == 1
    queued_a_while_ago(waiting)
    janitor()
    assert clean_redis.llen(BROKER_QUEUE) == 1, "a message still in the broker is not sent twice"

    redis_restarted(clean_redis)
    janitor()
    assert clean_redis.llen(BROKER_QUEUE) == 1, "the lost message is sent again"
    janitor()
    assert clean_redis.llen(BROKER_QUEUE) == 1, "and only once, however many rounds the janitor makes"

    workers.start("w1")
    wait_for(lambda: experiment_fresh(waiting.pk).status == "running", what="the re-sent experiment to run")
    wait_for(lambda: clean_redis.llen(BROKER_QUEUE) == 0, what="the broker's queue to empty")


def test_a_young_queued_experiment_is_left_to_its_first_message(transactional_db, learner, clean_redis):
    young = Experiment.objects.create(owner=learner, topology="pair")
    assert requeue.experiments_requeue_lost(send=run_experiment.delay) == []
    assert clean_redis.llen(BROKER_QUEUE) == 0
    queued_a_while_ago(young)
    assert requeue.experiments_requeue_lost(send=run_experiment.delay) == [young.pk]
