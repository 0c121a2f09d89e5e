"""Clients nobody here wrote: curl and openssl s_client against a STRICT inbound; prometheus_client's parser."""

import asyncio
import shutil
import subprocess

import pytest
from mesh_support import call_entry, metrics_text, pair_topology, run, running_mesh, stats
from prometheus_client.parser import text_string_to_metric_families

pytestmark = pytest.mark.integration


def _write_client_files(directory, cert: dict) -> dict:
    paths = {}
    for key, name in (("cert_pem", "client.pem"), ("key_pem", "client.key"), ("root_pem", "root.pem")):
        path = directory / name
        path.write_text(cert[key])
        paths[key] = str(path)
    return paths


@pytest.mark.skipif(shutil.which("curl") is None or shutil.which("openssl") is None, reason="needs curl and openssl")
def test_curl_and_openssl_need_a_mesh_certificate_at_a_strict_inbound(tmp_path):
    path = pair_topology(tmp_path)

    async def body():
        async with running_mesh(path) as mesh:
            port = mesh.replicas[("b", 0)].inbound_port
            files = _write_client_files(tmp_path, await mesh.client_certificate("a"))
            url = f"https://127.0.0.1:{port}/"
            # -k only skips curl's host-name check of B (mesh certificates name a SPIFFE ID, not a host);
            # what is tested is B's demand for a client certificate.
            no_cert = subprocess.run(
                ["curl", "-sk", "--max-time", "5", "-o", "/dev/null", "-w", "%{http_code}", url],
                capture_output=True,
                text=True,
                timeout=10,
            )
            with_cert = subprocess.run(
                [
                    "curl",
                    "-sk",
                    "--max-time",
                    "5",
                    "--cert",
                    files["cert_pem"],
                    "--key",
                    files["key_pem"],
                    "-o",
                    "/dev/null",
                    "-w",
                    "%{http_code}",
                    url,
                ],
                capture_output=True,
                text=True,
                timeout=10,
            )
            request = b"GET / HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n"
            s_client = [
                "openssl",
                "s_client",
                "-connect",
                f"127.0.0.1:{port}",
                "-CAfile",
                files["root_pem"],
                "-verify_return_error",
                "-quiet",
                "-ign_eof",
            ]
            openssl_no_cert = subprocess.run(s_client, input=request, capture_output=True, timeout=10)
            openssl_cert = subprocess.run(
                s_client + ["-cert", files["cert_pem"], "-key", files["key_pem"]],
                input=request,
                capture_output=True,
                timeout=10,
            )
            for _ in range(20):  # B logs the refusal as the connection closes: give it a moment
                b_stats = await stats(mesh, "b")
                if b_stats["tls_failures"].get("no client certificate", 0) >= 2:
                    break
                await asyncio.sleep(0.05)
            return no_cert, with_cert, openssl_no_cert, openssl_cert, b_stats

    no_cert, with_cert, openssl_no_cert, openssl_cert, b_stats = run(body())
    assert no_cert.returncode != 0 and no_cert.stdout == "000"
    assert with_cert.returncode == 0 and with_cert.stdout == "200"
    assert b"HTTP/1.1 200" not in openssl_no_cert.stdout
    assert b"certificate required" in openssl_no_cert.stderr.lower()  # the TLS alert B sent
    assert b_stats["tls_failures"].get("no client certificate") == 2, b_stats
    assert openssl_cert.stdout.startswith(b"HTTP/1.1 200"), openssl_cert.stderr


def test_metrics_parse_with_prometheus_client(tmp_path):
    path = pair_topology(tmp_path)

    async def body():
        async with running_mesh(path) as mesh:
            await call_entry(mesh, 5)
            return await metrics_text(mesh, "a"), await metrics_text(mesh, "b")

    a_text, b_text = run(body())
    for text, direction in ((a_text, "outbound"), (b_text, "inbound")):
        families = {f.name: f for f in text_string_to_metric_families(text)}
        requests = [s for s in families["mesh_requests"].samples if s.name == "mesh_requests_total"]
        served = sum(s.value for s in requests if s.labels["direction"] == direction and s.labels["status"] == "200")
        assert served == 5
        assert families["mesh_request_duration_seconds"].type == "histogram"
