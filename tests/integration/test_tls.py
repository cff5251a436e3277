"""TLS to PostgreSQL as managed databases require it: ``sslmode=verify-full`` with a CA file.

A primary of its own with ``ssl = on`` and a server certificate for 127.0.0.1 from a trustme CA;
the sidecar connects with ``?sslmode=verify-full&sslrootcert=<the CA>`` (the README's managed
database example), and PostgreSQL's own ``pg_stat_ssl`` confirms its connections are encrypted.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from devtools.cluster import TempCluster
from tests.harness import SidecarProcess, wait_for


@dataclass
class TlsCluster:
    """A primary that speaks TLS, and the CA file that verifies it."""

    cluster: TempCluster
    ca_file: Path
    other_ca_file: Path


@pytest.fixture(scope="module")
def tls() -> Iterator[TlsCluster]:
    ca, stranger = trustme.CA(), trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    # The server (as the postgres OS user when we are root) must read these: not under pytest's 0700 tmp.
    certs = Path(tempfile.mkdtemp(prefix="fasterdb-tls-"))
    certs.chmod(0o755)
    crt, key = certs / "server.crt", certs / "server.key"
    server.cert_chain_pems[0].write_to_path(str(crt))
    server.private_key_pem.write_to_path(str(key))
    key.chmod(0o600)  # PostgreSQL refuses a key others can read
    ca.cert_pem.write_to_path(str(certs / "ca.pem"))
    stranger.cert_pem.write_to_path(str(certs / "other-ca.pem"))
    cluster = TempCluster(extra_conf={"ssl": "on", "ssl_cert_file": f"'{crt}'", "ssl_key_file": f"'{key}'"})
    for path in (certs, crt, key):
        cluster.chown(path)
    try:
        with cluster:
            yield TlsCluster(cluster, certs / "ca.pem", certs / "other-ca.pem")
    finally:
        shutil.rmtree(certs, ignore_errors=True)


def _env(tls: TlsCluster, query: str) -> dict[str, str]:
    return {"FASTERDB_PRIMARY_DSN": f"{tls.cluster.dsn()}?{query}", "FASTERDB_HEALTH_CACHE_TTL": "0.1"}


def test_verify_full_with_the_servers_ca(tls: TlsCluster) -> None:
    with SidecarProcess(_env(tls, f"sslmode=verify-full&sslrootcert={tls.ca_file}")) as sidecar:
        wait_for(lambda: sidecar.get("/health/db").status_code == 200, 15, what="/health/db 200 over TLS")
        encrypted = tls.cluster.sql(
            tls.cluster.primary,
            "SELECT count(*) FILTER (WHERE s.ssl), count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)"
            " WHERE a.application_name LIKE 'fasterdb-sidecar/%'",
        )
        done, total = (int(n) for n in encrypted.split("|"))
        assert total >= 1 and done == total, encrypted


def test_a_certificate_from_another_ca_is_refused_with_its_reason(tls: TlsCluster) -> None:
    with SidecarProcess(_env(tls, f"sslmode=verify-full&sslrootcert={tls.other_ca_file}")) as sidecar:
        body = wait_for(
            lambda: (r := sidecar.get("/health/db")).status_code == 503 and r.json()["primary"]["error"] and r.json(),
            15,
            what="/health/db 503 with a reason",
        )
        assert body["primary"]["error"] == "tls certificate verify failed", body
        assert tls.cluster.app_password not in sidecar.logs()
