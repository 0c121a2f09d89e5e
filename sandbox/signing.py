"""Signatures on the commands the site puts on an experiment's stream, so the worker applies only those.

Anyone who can reach Redis can XADD to `sandbox:<id>:commands`. The worker therefore trusts an entry only when
it carries an HMAC-SHA256 made with a key derived from the site's SECRET_KEY (which Redis never sees), over the
experiment id, the command id and the command's canonical JSON: a forged entry has no valid signature, and a
signed one copied to another experiment, or given another id, does not verify there.
"""

import hmac
import json

from django.conf import settings
from django.utils.crypto import salted_hmac

# The purpose salt: a key for signing sandbox commands is good for nothing else that SECRET_KEY protects.
KEY_SALT = "meshlearn.sandbox.command"


def canonical_json(command: dict) -> str:
    """One spelling per command, whatever the order of its keys, so the worker checks what the site signed."""
    return json.dumps(command, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def command_signature(*, experiment_id: int, command_id: str, command: dict) -> str:
    message = f"{experiment_id}\n{command_id}\n{canonical_json(command)}"
    return salted_hmac(KEY_SALT, message, secret=settings.SECRET_KEY, algorithm="sha256").hexdigest()


def command_signature_valid(*, experiment_id: int, command_id: str, command: dict, signature: str) -> bool:
    expected = command_signature(experiment_id=experiment_id, command_id=command_id, command=command)
    return hmac.compare_digest(expected, signature or "")
