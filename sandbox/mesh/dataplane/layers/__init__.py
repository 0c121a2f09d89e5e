"""Proxy policy layers: each wraps a Handler and is a Handler; sandbox.mesh.dataplane.stack composes them."""
