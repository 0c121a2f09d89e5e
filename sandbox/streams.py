"""The Redis side of an experiment: stream and key names, and the encoding of what travels on them.

    sandbox:<id>:commands   the learner's commands, oldest first (web -> worker)
    sandbox:<id>:events     the engine's events as JSON (worker -> live views), capped
    sandbox:<id>:viewer     present while a page watches the experiment (expires by itself)

Both streams are capped with MAXLEN and expire after the experiment ended. Nothing here is the record:
the database is. Each command carries the site's signature (sandbox.signing): the worker applies no other.
"""

import json

import redis
from django.conf import settings

from . import signing

STOP = "stop"  # the command that ends an experiment; the only one the engine does not see


def commands_key(experiment_id: int) -> str:
    return f"sandbox:{experiment_id}:commands"


def events_key(experiment_id: int) -> str:
    return f"sandbox:{experiment_id}:events"


def viewer_key(experiment_id: int) -> str:
    return f"sandbox:{experiment_id}:viewer"


def client() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=5, socket_connect_timeout=5)


def async_client():
    import redis.asyncio

    return redis.asyncio.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=5)


class CommandNotSigned(ValueError):
    """A well-formed entry the site did not sign for this experiment: written by someone else, or copied."""


def encode_command(command: dict, *, experiment_id: int, command_id: str) -> dict[str, str]:
    signature = signing.command_signature(experiment_id=experiment_id, command_id=command_id, command=command)
    return {"id": command_id, "command": signing.canonical_json(command), "sig": signature}


def decode_command(fields: dict, *, experiment_id: int) -> tuple[str, dict]:
    """(id, command) from a stream entry of this experiment. Raises CommandNotSigned when the site did not sign
    it for this experiment, ValueError on an entry nobody should have written."""
    fields = {_text(k): _text(v) for k, v in fields.items()}
    command = json.loads(fields.get("command", ""))
    if not isinstance(command, dict):
        raise ValueError("a command must be a JSON object")
    command_id = fields.get("id", "")
    if not signing.command_signature_valid(
        experiment_id=experiment_id, command_id=command_id, command=command, signature=fields.get("sig", "")
    ):
        raise CommandNotSigned("the command does not carry the site's signature for this experiment")
    return command_id, command


def command_push(connection: redis.Redis, *, experiment_id: int, command: dict, command_id: str) -> None:
    connection.xadd(
        commands_key(experiment_id),
        encode_command(command, experiment_id=experiment_id, command_id=command_id),
        maxlen=settings.SANDBOX_STREAM_MAXLEN,
        approximate=True,
    )
    # A stream written after the experiment ended must not live forever either.
    connection.expire(commands_key(experiment_id), settings.SANDBOX_LIFETIME + settings.SANDBOX_STREAM_TTL)


def viewer_touch(connection: redis.Redis, *, experiment_id: int) -> None:
    connection.set(viewer_key(experiment_id), "1", ex=settings.SANDBOX_VIEWER_TTL)


def entry_text(entry_id: bytes | str) -> str:
    return _text(entry_id)


def entry_summary(fields: dict, *, limit: int = 200) -> dict[str, str]:
    """What a refused entry said, cut short: enough for an operator to see what was tried, never a flood."""
    return {_text(k)[:40]: _text(v)[:limit] for k, v in list(fields.items())[:5]}


def event_json(fields: dict) -> str:
    return _text(fields.get(b"event", fields.get("event", b"")))


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
