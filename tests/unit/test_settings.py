import subprocess
import sys

import pytest

from fasterdb_sidecar.settings import ConfigError, load_settings, unknown_variables
from tests.harness import ROOT

SECRET = "s3cr3t-Passw0rd"
DSN = f"postgresql://app:{SECRET}@db.example:5432/app"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("FASTERDB_"):
            monkeypatch.delenv(key)


def test_defaults_follow_the_contract(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FASTERDB_PRIMARY_DSN", DSN)
    s = load_settings()
    # Round 3 (issue 21): the sidecar keeps no pooled connection open and gives borrowed ones back
    # after 30 s (the contract's first table said 1 and 300).
    assert (s.host, s.port, s.pool_min_size, s.pool_max_size) == ("0.0.0.0", 8080, 0, 10)
    assert (s.command_timeout, s.max_inactive_connection_lifetime) == (30, 30)
    # Issue 24: the TTL went from 1.0 to 0.1 s so that a frozen primary is 503 within ~1.05 s.
    assert (s.health_timeout, s.health_cache_ttl) == (1.0, 0.1)
    assert (s.max_lag_bytes, s.max_lag_seconds) == (16 * 1024**2, 10)
    assert s.admin_token is None and s.schema_name == "fasterdb"
    assert (s.job_max_replica_lag_bytes, s.job_max_pool_waiting) == (64 * 1024**2, 4)
    assert (s.log_level, s.log_format) == ("info", "json")
    assert SECRET not in repr(s)


def test_replicas_named_and_numbered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FASTERDB_PRIMARY_DSN", DSN)
    monkeypatch.setenv("FASTERDB_REPLICA_DSNS", f"east=postgresql://a:{SECRET}@r1/app, postgresql://a:{SECRET}@r2/app")
    s = load_settings()
    assert [r.name for r in s.replica_dsns] == ["east", "replica-2"]
    assert s.replica_dsns[1].dsn.get_secret_value().endswith("@r2/app")
    assert SECRET not in repr(s)


def test_replica_dsns_may_name_several_hosts(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    multi = f"postgresql://a:{SECRET}@h1:5432,h2:5433/app?target_session_attrs=standby"
    monkeypatch.setenv("FASTERDB_PRIMARY_DSN", DSN)
    monkeypatch.setenv("FASTERDB_REPLICA_DSNS", f"r1=postgresql://a:{SECRET}@r1/app,r2={multi}")
    s = load_settings()
    assert [(r.name, r.dsn.get_secret_value()) for r in s.replica_dsns][1] == ("r2", multi)
    assert len(s.replica_dsns) == 2
    # A Secret file: one per line, unnamed ones numbered by their place in the list.
    monkeypatch.delenv("FASTERDB_REPLICA_DSNS")
    (tmp_path / "replicas").write_text(f"{multi}\npostgresql://a:{SECRET}@/app?host=/run/pg&port=5433\n")
    monkeypatch.setenv("FASTERDB_REPLICA_DSNS_FILE", str(tmp_path / "replicas"))
    assert [r.name for r in load_settings().replica_dsns] == ["replica-1", "replica-2"]
    # A bad item is named as configured: never a "replica-3" made of a host list's pieces.
    (tmp_path / "replicas").write_text(f"r2=postgresql://a:{SECRET}@h1,h2:99999/app\n")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert "replica 'r2'" in str(info.value) and "replica-" not in str(info.value) and SECRET not in str(info.value)


def test_sizes_with_units(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FASTERDB_PRIMARY_DSN", DSN)
    monkeypatch.setenv("FASTERDB_MAX_LAG_BYTES", "1gib")
    monkeypatch.setenv("FASTERDB_JOB_MAX_REPLICA_LAG_BYTES", "1048576")
    s = load_settings()
    assert s.max_lag_bytes == 1024**3 and s.job_max_replica_lag_bytes == 1048576


def test_http_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FASTERDB_PRIMARY_DSN", DSN)
    s = load_settings()
    assert (s.max_request_head_bytes, s.max_streams) == (32 * 1024, 64)
    monkeypatch.setenv("FASTERDB_MAX_REQUEST_HEAD_BYTES", "16kB")
    monkeypatch.setenv("FASTERDB_MAX_STREAMS", "3")
    assert (load_settings().max_request_head_bytes, load_settings().max_streams) == (16 * 1024, 3)
    for bad in ("100", "2MB", "0", "-1", "16XB"):  # below 1kB, above 1MB, not a size: refused, never "no limit"
        monkeypatch.setenv("FASTERDB_MAX_REQUEST_HEAD_BYTES", bad)
        with pytest.raises(ConfigError, match="FASTERDB_MAX_REQUEST_HEAD_BYTES"):
            load_settings()


def test_file_variants(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "dsn").write_text(DSN + "\n")
    (tmp_path / "token").write_text("t" * 32 + "\n")
    monkeypatch.setenv("FASTERDB_PRIMARY_DSN_FILE", str(tmp_path / "dsn"))
    monkeypatch.setenv("FASTERDB_ADMIN_TOKEN_FILE", str(tmp_path / "token"))
    s = load_settings()
    assert s.primary_dsn.get_secret_value() == DSN
    assert s.admin_token is not None and s.admin_token.get_secret_value() == "t" * 32


def test_optional_secret_files_a_kubernetes_secret_left_out(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    # A Secret volume projects only the keys the Secret has: the optional ones may be missing.
    (tmp_path / "primary-dsn").write_text(DSN)
    monkeypatch.setenv("FASTERDB_PRIMARY_DSN_FILE", str(tmp_path / "primary-dsn"))
    monkeypatch.setenv("FASTERDB_REPLICA_DSNS_FILE", str(tmp_path / "replica-dsns"))
    monkeypatch.setenv("FASTERDB_ADMIN_TOKEN_FILE", str(tmp_path / "admin-token"))
    s = load_settings()
    assert s.replica_dsns == [] and s.admin_token is None
    # A directory that does not exist is a mistake, not a missing key; so is a missing primary.
    monkeypatch.setenv("FASTERDB_ADMIN_TOKEN_FILE", str(tmp_path / "typo" / "admin-token"))
    with pytest.raises(ConfigError, match="FASTERDB_ADMIN_TOKEN_FILE: cannot read"):
        load_settings()
    monkeypatch.delenv("FASTERDB_ADMIN_TOKEN_FILE")
    (tmp_path / "primary-dsn").unlink()
    with pytest.raises(ConfigError, match="FASTERDB_PRIMARY_DSN_FILE: cannot read"):
        load_settings()


def test_drain_settings_keep_fractions(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FASTERDB_PRIMARY_DSN", DSN)
    s = load_settings()
    assert (s.drain_min_seconds, s.shutdown_timeout, s.startup_require_primary) == (0, 10, False)
    monkeypatch.setenv("FASTERDB_SHUTDOWN_TIMEOUT", "0.5")
    monkeypatch.setenv("FASTERDB_DRAIN_MIN_SECONDS", "2.25")
    s = load_settings()
    assert (s.shutdown_timeout, s.drain_min_seconds) == (0.5, 2.25)
    monkeypatch.setenv("FASTERDB_DRAIN_MIN_SECONDS", "-1")
    with pytest.raises(ConfigError, match="FASTERDB_DRAIN_MIN_SECONDS"):
        load_settings()


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({}, "FASTERDB_PRIMARY_DSN: required"),
        ({"FASTERDB_PRIMARY_DSN": f"mysql://u:{SECRET}@h/db"}, "FASTERDB_PRIMARY_DSN"),
        ({"FASTERDB_PRIMARY_DSN": f"postgresql://u:{SECRET}@h:99x/db"}, "FASTERDB_PRIMARY_DSN"),
        ({"FASTERDB_PRIMARY_DSN": DSN, "FASTERDB_MAX_LAG_BYTES": "16XB"}, "FASTERDB_MAX_LAG_BYTES"),
        ({"FASTERDB_PRIMARY_DSN": DSN, "FASTERDB_MAX_LAG_BYTES": "-1"}, "FASTERDB_MAX_LAG_BYTES"),
        ({"FASTERDB_PRIMARY_DSN": DSN, "FASTERDB_POOL_MIN_SIZE": "20"}, "FASTERDB_POOL_MIN_SIZE"),
        ({"FASTERDB_PRIMARY_DSN": DSN, "FASTERDB_PORT": "70000"}, "FASTERDB_PORT"),
        ({"FASTERDB_PRIMARY_DSN": DSN, "FASTERDB_HEALTH_TIMEOUT": "0"}, "FASTERDB_HEALTH_TIMEOUT"),
        ({"FASTERDB_PRIMARY_DSN": DSN, "FASTERDB_LOG_FORMAT": "xml"}, "FASTERDB_LOG_FORMAT"),
        ({"FASTERDB_PRIMARY_DSN": DSN, "FASTERDB_SCHEMA": "x; drop"}, "FASTERDB_SCHEMA"),
        ({"FASTERDB_PRIMARY_DSN": DSN, "FASTERDB_ADMIN_TOKEN": "short"}, "FASTERDB_ADMIN_TOKEN"),
        (
            {
                "FASTERDB_PRIMARY_DSN": DSN,
                "FASTERDB_REPLICA_DSNS": f"a=postgresql://u:{SECRET}@h/d,a=postgresql://u:{SECRET}@h2/d",
            },
            "used twice",
        ),
        ({"FASTERDB_PRIMARY_DSN_FILE": "/nonexistent/dsn"}, "FASTERDB_PRIMARY_DSN_FILE"),
        ({"FASTERDB_PRIMARY_DSN": DSN, "FASTERDB_PRIMARY_DSN_FILE": "/etc/hostname"}, "not both"),
    ],
)
def test_bad_settings_give_one_line_without_secret(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], needle: str
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert needle in message
    assert "\n" not in message
    assert SECRET not in message


def test_unknown_variables_are_reported() -> None:
    env = {
        "FASTERDB_POOL_MAXSIZE": "3",
        "FASTERDB_URL": "x",
        "FASTERDB_SCHEMA": "a",
        "FASTERDB_PRIMARY_DSN_FILE": "f",
    }
    assert unknown_variables(env) == ["FASTERDB_POOL_MAXSIZE"]


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"FASTERDB_PRIMARY_DSN": DSN, "FASTERDB_MAX_LAG_BYTES": "16XB"},
        {"FASTERDB_PRIMARY_DSN_FILE": "/nonexistent/secret-dsn"},
        {"FASTERDB_PRIMARY_DSN": f"postgresql://u:{SECRET}@h:bad/db"},
    ],
)
def test_the_process_stops_with_one_clear_line(env: dict[str, str]) -> None:
    import os

    full = {k: v for k, v in os.environ.items() if not k.startswith("FASTERDB_")} | env
    proc = subprocess.run(
        [sys.executable, "-m", "fasterdb_sidecar"], env=full, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("fasterdb-sidecar: configuration error: FASTERDB_")
    assert "Traceback" not in proc.stderr and SECRET not in proc.stderr and proc.stdout == ""


@pytest.mark.parametrize("password", ["p@ss-word", "pass/word", "pass?word", "pass#word", "50%off-word"])
def test_ambiguous_dsns_are_refused_naming_the_variable(monkeypatch: pytest.MonkeyPatch, password: str) -> None:
    monkeypatch.setenv("FASTERDB_PRIMARY_DSN", f"postgresql://app:{password}@db.example:5432/app")
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith("FASTERDB_PRIMARY_DSN: ") and "percent-encode" in message
    assert password not in message and "\n" not in message


def test_the_log_mask_covers_the_password_as_the_driver_decodes_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import logging
    from urllib.parse import quote

    from fasterdb_sidecar.logs import configure_logging
    from fasterdb_sidecar.settings import secrets_of as _secrets

    password = "p@ss:w/rd%#?x-1"
    written = quote(password, safe="")
    monkeypatch.setenv("FASTERDB_PRIMARY_DSN", f"postgresql://app:{written}@db.example:5432/app")
    monkeypatch.setenv("FASTERDB_REPLICA_DSNS", f"r=postgresql://app:{written}@replica.example/app")
    settings = load_settings()
    assert settings.primary_dsn.get_secret_value().count("@") == 1
    configure_logging("info", "json", _secrets(settings))
    logging.getLogger("fasterdb.test").warning("driver said %s, config said %s", password, written)
    err = capsys.readouterr().err
    assert password not in err and written not in err and "***" in err
    logging.getLogger().handlers.clear()


def test_an_ambiguous_dsn_stops_the_process_with_exit_2() -> None:
    import os

    full = {k: v for k, v in os.environ.items() if not k.startswith("FASTERDB_")}
    full["FASTERDB_PRIMARY_DSN"] = f"postgresql://app:{SECRET}@x@db.example/app"
    proc = subprocess.run(
        [sys.executable, "-m", "fasterdb_sidecar"], env=full, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "FASTERDB_PRIMARY_DSN" in proc.stderr and "%40" in proc.stderr
    assert SECRET not in proc.stderr and "Traceback" not in proc.stderr


def test_a_misspelt_required_setting_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FASTERDB_PRIMARY_DNS", DSN)
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value) == "FASTERDB_PRIMARY_DSN: required but not set (FASTERDB_PRIMARY_DNS is set: a typo?)"
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("sslmode=verify-full&sslrootcert=/nonexistent.pem", "sslrootcert file /nonexistent.pem does not exist"),
        ("sslmode=require&sslcert=/nonexistent/client.crt", "sslcert file /nonexistent/client.crt does not exist"),
        ("sslkey=%2Fno%20such%2Fclient.key", "sslkey file /no such/client.key does not exist"),  # decoded as asyncpg
        ("sslmode=verify-full&sslrootcert=/tmp", "sslrootcert file /tmp is not a readable file"),
        ("sslmode=verify-full&sslrootcert=system", "sslrootcert=system"),
        ("sslmode=verify-ful", "sslmode must be one of disable, allow, prefer, require, verify-ca, verify-full"),
    ],
)
def test_tls_files_that_cannot_work_are_refused_at_start(
    monkeypatch: pytest.MonkeyPatch, query: str, expected: str
) -> None:
    monkeypatch.setenv("FASTERDB_PRIMARY_DSN", f"{DSN}?{query}")
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert message.startswith("FASTERDB_PRIMARY_DSN: ") and expected in message, message
    assert SECRET not in message and "\n" not in message


def test_tls_files_of_a_replica_and_verification_without_a_ca(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.postgresql/root.crt for the driver to fall back on
    monkeypatch.delenv("PGSSLROOTCERT", raising=False)
    monkeypatch.setenv("FASTERDB_PRIMARY_DSN", f"{DSN}?sslmode=verify-full&sslrootcert={ca}")
    monkeypatch.setenv("FASTERDB_REPLICA_DSNS", f"east={DSN}?sslmode=verify-ca")
    with pytest.raises(ConfigError) as info:
        load_settings()
    assert str(info.value) == (
        "FASTERDB_REPLICA_DSNS: replica 'east': sslmode=verify-ca needs sslrootcert=/path/to/ca.pem "
        "(the server's CA certificate or bundle)"
    )
    monkeypatch.setenv("FASTERDB_REPLICA_DSNS", f"east={DSN}?sslmode=verify-ca&sslrootcert={ca}")
    assert load_settings().replica_dsns[0].name == "east"


def test_a_missing_ca_file_stops_the_process_with_exit_2() -> None:
    import os

    full = {k: v for k, v in os.environ.items() if not k.startswith("FASTERDB_")}
    full["FASTERDB_PRIMARY_DSN"] = f"{DSN}?sslmode=verify-full&sslrootcert=/nonexistent.pem"
    proc = subprocess.run(
        [sys.executable, "-m", "fasterdb_sidecar"], env=full, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == (
        "fasterdb-sidecar: configuration error: "
        "FASTERDB_PRIMARY_DSN: sslrootcert file /nonexistent.pem does not exist\n"
    )
