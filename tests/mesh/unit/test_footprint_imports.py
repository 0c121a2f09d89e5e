"""What a demo service process loads: every service replica of an experiment is its own process, so a heavy
module it never uses costs that much resident memory per replica (cryptography: ~10 MB each)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def _loaded_after_import(module: str) -> set[str]:
    code = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True, timeout=60)
    return set(json.loads(out.stdout))


def test_a_demo_service_does_not_load_cryptography_or_yaml():
    loaded = _loaded_after_import("sandbox.mesh.runtime.service")
    assert not {name for name in loaded if name.split(".")[0] in ("cryptography", "yaml")}


def test_a_spiffe_source_in_a_policy_is_still_checked_by_the_ca_grammar():
    from sandbox.mesh.config.schema import SchemaError, parse_authorization

    try:
        parse_authorization({"allow": [{"sources": ["spiffe://meshlearn.local/ns/default/sa/../a"]}]})
    except SchemaError as exc:
        assert "invalid path segment" in str(exc)
    else:
        raise AssertionError("a SPIFFE ID with a '..' segment was accepted")
