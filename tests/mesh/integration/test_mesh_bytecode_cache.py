"""Each component is a new interpreter: its compiled bytecode is kept in a private cache outside the source tree
(so the next start skips compiling), and a cache directory someone else could write to is never used."""

from __future__ import annotations

import os

import pytest
from mesh_support import call_entry, pair_topology, run, running_mesh

from sandbox.mesh.runtime.supervisor import bytecode_cache_dir, bytecode_env

pytestmark = pytest.mark.integration


def test_components_cache_their_bytecode_in_the_users_own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")  # as in a shell that keeps the source tree free of .pyc
    path = pair_topology(tmp_path)

    async def body():
        async with running_mesh(path) as mesh:
            assert [r.status for r in await call_entry(mesh)] == [200]

    run(body())
    cache = tmp_path / "cache" / "meshlearn" / "pycache"
    # The prefix mirrors each source's absolute directory; a `-m` main module itself is never cached by Python.
    compiled = {p.name.split(".")[0] for p in cache.rglob("sandbox/mesh/*/*.pyc")}
    assert {"http1", "tls", "ca", "schema"} <= compiled
    assert oct(cache.stat().st_mode & 0o777) == oct(0o700)


def test_a_cache_directory_others_can_write_to_is_not_used(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    shared = tmp_path / "meshlearn" / "pycache"
    shared.mkdir(parents=True)
    os.chmod(shared, 0o777)  # anyone could plant a .pyc here
    assert bytecode_cache_dir() is None
    assert bytecode_env() == {"PYTHONDONTWRITEBYTECODE": "1"}


def test_a_symlinked_cache_directory_is_not_used(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir(mode=0o700)
    (tmp_path / "meshlearn").mkdir(mode=0o700)
    (tmp_path / "meshlearn" / "pycache").symlink_to(elsewhere)
    assert bytecode_cache_dir() is None
