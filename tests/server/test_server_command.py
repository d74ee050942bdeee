"""`ansim serve` itself: TLS with --certfile/--keyfile (Secure cookies, HSTS) on a real
port, and the refusals that keep it from being exposed by mistake."""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from ansim.pipeline.workspaces import init_workspace
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.server_fixtures import free_port

ANSIM = str(Path(sys.executable).parent / "ansim")


def self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_serve_over_tls_and_refusals(ansim_home: Path, tmp_path: Path) -> None:
    init_workspace()[0].close()
    cert, key = self_signed(tmp_path)
    env = {**os.environ}
    refused = subprocess.run(
        [ANSIM, "serve", "--host", "0.0.0.0", "--hma-no-auth"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert refused.returncode == 2 and "loopback" in refused.stderr
    port = free_port()
    server = subprocess.Popen(
        [ANSIM, "serve", "--port", str(port), "--certfile", str(cert), "--keyfile", str(key)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    context = ssl.create_default_context(cafile=str(cert))
    try:
        for _ in range(600):
            try:
                with urllib.request.urlopen(
                    f"https://127.0.0.1:{port}/login", context=context, timeout=5
                ) as page:
                    headers = page.headers
                    break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()  # type: ignore[union-attr]
                time.sleep(0.2)
        else:
            raise AssertionError("ansim serve did not answer over TLS")
        assert "Secure" in headers["Set-Cookie"] and "HttpOnly" in headers["Set-Cookie"]
        assert headers["Strict-Transport-Security"].startswith("max-age=")
        assert headers["X-Frame-Options"] == "DENY"
        assert "server" not in {k.lower() for k in headers}
    finally:
        server.terminate()
        server.wait(30)
