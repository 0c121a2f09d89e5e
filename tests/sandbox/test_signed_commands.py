"""A local process that can write to Redis cannot steer or stop a learner's experiment: the worker obeys only the
commands the site signed for that experiment, and records the others as refused."""

import json

import pytest
from django.urls import reverse

from sandbox import streams
from sandbox.mesh.runtime.events import CommandApplied, Snapshot
from sandbox.models import ExperimentEvent

from .conftest import events_of, experiment_fresh, wait_for
from .test_experiments_with_workers import start_from_site, wait_running

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]


def raw_xadd(connection, experiment_id: int, fields: dict) -> None:
    """What `redis-cli XADD sandbox:<id>:commands * ...` does: no site involved."""
    connection.xadd(streams.commands_key(experiment_id), fields)


def refusals(experiment_id: int) -> list[dict]:
    return [event.data for event in ExperimentEvent.objects.filter(experiment_id=experiment_id, kind="refused")]


def test_forged_commands_are_refused_and_the_sites_own_stop_is_obeyed(workers, client, learner, clean_redis, settings):
    settings.SANDBOX_RUNTIME = "in_process"  # lighter on a shared machine; the command path is the same
    workers.start("w1")
    experiment = wait_running(start_from_site(client, learner))
    wait_for(lambda: any(isinstance(e, Snapshot) for e in events_of(experiment.pk)), what="a first snapshot")

    # Well-formed but unsigned: a stop, and a fault that would make b fail every request.
    raw_xadd(clean_redis, experiment.pk, {"id": "stop", "command": json.dumps({"action": streams.STOP})})
    fault = {"action": "fail", "service": "b", "percent": 100, "status": 503}
    raw_xadd(clean_redis, experiment.pk, {"id": "forged-1", "command": json.dumps(fault), "sig": "0" * 64})
    wait_for(lambda: len(refusals(experiment.pk)) >= 2, what="two refusals")
    assert experiment_fresh(experiment.pk).status == "running"
    # Signed by the site, but for another experiment: copied here, it does not verify.
    elsewhere = streams.encode_command({"action": streams.STOP}, experiment_id=experiment.pk + 1000, command_id="stop")
    raw_xadd(clean_redis, experiment.pk, elsewhere)

    refused = wait_for(lambda: len(refusals(experiment.pk)) >= 3 and refusals(experiment.pk), what="three refusals")
    assert all("did not come from this site" in r["reason"] and "nothing was changed" in r["reason"] for r in refused)
    assert [r["fields"]["id"] for r in refused] == ["stop", "forged-1", "stop"]
    # None was applied: the experiment runs on, the engine never saw the fault, and the snapshots keep coming.
    last = max(e.t for e in events_of(experiment.pk) if isinstance(e, Snapshot))
    wait_for(
        lambda: any(isinstance(e, Snapshot) and e.t > last + 2 for e in events_of(experiment.pk)),
        what="snapshots to go on after the forged commands",
    )
    assert experiment_fresh(experiment.pk).status == "running"
    assert not [e for e in events_of(experiment.pk) if isinstance(e, CommandApplied)]
    # The learner's page tells them too, in words.
    client.force_login(learner)
    page = client.get(reverse("sandbox:live", args=[experiment.pk]), {"part": "log"}).content.decode()
    assert "did not come from this site" in page

    # The site's own stop is signed, and obeyed.
    client.post(reverse("sandbox:stop", args=[experiment.pk]))
    ended = wait_for(lambda: (e := experiment_fresh(experiment.pk)).status == "finished" and e, what="finished")
    assert ended.end_reason == "stopped"


def test_a_signed_command_replayed_in_the_same_experiment_is_applied_once(
    workers, client, learner, clean_redis, settings
):
    settings.SANDBOX_RUNTIME = "in_process"
    workers.start("w1")
    experiment = wait_running(start_from_site(client, learner))
    client.force_login(learner)
    client.post(reverse("sandbox:command", args=[experiment.pk]), {"action": "fail"})
    wait_for(lambda: [e for e in events_of(experiment.pk) if isinstance(e, CommandApplied)], what="the command applied")
    # Someone copies the site's signed entry and adds it again.
    [(_, fields)] = clean_redis.xrange(streams.commands_key(experiment.pk))
    raw_xadd(clean_redis, experiment.pk, fields)
    refused = wait_for(lambda: refusals(experiment.pk), what="the copy refused")
    assert "repeats a command already applied" in refused[0]["reason"]
    assert len([e for e in events_of(experiment.pk) if isinstance(e, CommandApplied)]) == 1


def test_the_signature_binds_the_experiment_the_id_and_every_field():
    signed = streams.encode_command({"action": "fail", "service": "b"}, experiment_id=7, command_id="c1")
    assert streams.decode_command(signed, experiment_id=7) == ("c1", {"action": "fail", "service": "b"})
    for changed, experiment_id in [
        ({**signed}, 8),  # another experiment
        ({**signed, "id": "c2"}, 7),  # another id
        ({**signed, "command": json.dumps({"action": "fail", "service": "a"})}, 7),  # another command
        ({k: v for k, v in signed.items() if k != "sig"}, 7),  # no signature
    ]:
        with pytest.raises(streams.CommandNotSigned):
            streams.decode_command(changed, experiment_id=experiment_id)
