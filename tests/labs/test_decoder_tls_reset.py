"""A handshake the peer reset is read as the engine's own reason, and points at the peer's record for the cause."""

from labs.decoder import decode


def test_a_reset_handshake_is_read_as_a_reset_and_points_at_the_peer():
    decoded = decode("TLS handshake failed: connection reset")

    titles = [meaning.title for meaning in decoded.meanings]
    assert titles == ["TLS handshake failure: connection reset"], titles
    meaning = decoded.meanings[0]
    assert any("certificate" in cause and "peer's own record" in cause for cause in meaning.causes), meaning.causes
    assert meaning.lab == "bad-certificate"


def test_a_reset_in_mid_request_is_not_taken_for_a_tls_failure():
    decoded = decode("upstream reset: [Errno 104] Connection reset by peer")

    assert not [meaning for meaning in decoded.meanings if meaning.kind == "tls"], decoded.meanings
