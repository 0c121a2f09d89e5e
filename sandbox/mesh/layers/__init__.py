"""Proxy policy layers: each wraps a Handler and is a Handler; sandbox.mesh.stack composes them."""
