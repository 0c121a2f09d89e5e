"""/healthz answers 200 when the database and Redis answer, 503 naming the one that failed."""

import socket

import pytest


@pytest.mark.integration
def test_healthz_is_ok_with_real_redis_and_database(client, db):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_healthz_names_redis_when_it_is_down(client, db, settings):
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "failed": ["redis"]}  # no host or port leaked


def test_healthz_explains_failures_to_developers(client, db, settings):
    settings.DEBUG = True
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    assert "ConnectionError" in client.get("/healthz").json()["checks"]["redis"]


def test_healthz_names_the_database_when_it_is_down(client, db, monkeypatch, settings):
    settings.DEBUG = True
    from meshlearn import health

    class UnreachableDatabase:
        def cursor(self):
            raise RuntimeError("database unreachable")

    monkeypatch.setattr(health, "connection", UnreachableDatabase())
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["failed"] == ["database"]
    assert response.json()["checks"]["database"] == "RuntimeError: database unreachable"
