"""The decoder explains the local rate limit's 429 RL from the engine's own flag table, in plain words."""

from labs.decoder import decode, flags_explained
from sandbox.mesh.config.flags import FLAG_EXPLANATIONS


def test_rl_is_explained_by_the_engine_in_plain_words():
    [(flag, meaning)] = flags_explained("RL")
    assert flag == "RL"
    assert meaning == FLAG_EXPLANATIONS["RL"]
    assert "429" in meaning and "rate limit" in meaning


def test_a_pasted_rate_limited_reply_decodes_to_rl_on_the_callee():
    decoding = decode("HTTP/1.1 429 Too Many Requests\n\nlocal_rate_limited")
    flags = [m for m in decoding.meanings if m.kind == "flag"]
    assert [m.token for m in flags] == ["RL"]
    assert flags[0].action == {"action": "rate_limit", "service": "b", "rps": 10, "burst": 5}
