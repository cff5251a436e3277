"""DSNs are read exactly as asyncpg reads them, or refused; the log mask covers what asyncpg sends."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from asyncpg import connect_utils
from hypothesis import given, settings
from hypothesis import strategies as st

from fasterdb.dsn import DsnError, parse_dsn

SPECIAL = "@:/%#?"
secret_text = st.text(alphabet=st.sampled_from("ab9Z" + SPECIAL), min_size=1, max_size=12)


def driver_view(dsn: str) -> tuple[str | None, str | None, list[tuple[str, int]], str | None]:
    """(user, password, hosts, database) as asyncpg 0.32 parses ``dsn``."""
    addrs, params = connect_utils._parse_connect_dsn_and_args(
        dsn=dsn, host=None, port=None, user=None, password=None, passfile="/nonexistent", database=None,
        ssl=None, service=None, servicefile=None, direct_tls=None, server_settings=None,
        target_session_attrs=None, krbsrvname=None, gsslib=None,
    )  # fmt: skip
    return params.user, params.password, [_address(a) for a in addrs], params.database


def _address(addr: object) -> tuple[str, int]:
    """(host, port); a Unix socket, which the driver holds as its file's path, as (directory, port)."""
    if isinstance(addr, str):
        directory, _, name = addr.rpartition("/.s.PGSQL.")
        return directory, int(name)
    host, port = addr  # type: ignore[misc]
    return str(host), int(port)


@settings(max_examples=400, deadline=None)
@given(password=secret_text, encode=st.booleans(), hosts=st.integers(1, 2))
def test_accepted_dsns_mean_the_same_to_the_driver(password: str, encode: bool, hosts: int) -> None:
    written = quote(password, safe="") if encode else password
    host_list = ",".join(f"db{i}.example:{5432 + i}" for i in range(hosts))
    dsn = f"postgresql://app:{written}@{host_list}/appdb"
    try:
        ours = parse_dsn(dsn)
    except DsnError as exc:
        assert not encode, (dsn, exc)  # a percent-encoded password is always accepted
        if len(password) >= 4:  # a one-character "password" can match any message
            assert password not in str(exc) and written not in str(exc)
        return
    user, driver_password, driver_hosts, database = driver_view(dsn)
    assert ours.user == user and (ours.database or user) == database  # the driver's default: the user
    assert [(h, p or 5432) for h, p in ours.hosts] == driver_hosts
    assert driver_password is None or driver_password in ours.secrets  # the mask covers what the driver sends
    if encode:
        assert driver_password == password


@pytest.mark.parametrize(
    ("password", "needle"),
    [("p@ss", "%40"), ("p/ss", "%2F"), ("p?ss", "%3F"), ("p#ss", "%23"), ("50%off", "%25"), ("a:b@c", "%40")],
)
def test_ambiguous_passwords_are_refused_with_the_encoding_to_use(password: str, needle: str) -> None:
    with pytest.raises(DsnError) as info:
        parse_dsn(f"postgresql://app:{password}@db.example/appdb")
    assert needle in str(info.value) and password not in str(info.value)


def test_multi_host_and_target_session_attrs() -> None:
    dsn = parse_dsn("postgresql://app:pw@h1:5432,h2:5433/db?target_session_attrs=read-write")
    assert dsn.hosts == [("h1", 5432), ("h2", 5433)] and dsn.target_session_attrs == "read-write"
    assert dsn.safe() == "postgresql://app@h1:5432,h2:5433/db"
    with pytest.raises(DsnError):
        parse_dsn("postgresql://app:pw@h1/db?target_session_attrs=writable")


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://app:pw@/appdb?host=/run/pg&port=5433",
        "postgresql://app:pw@/appdb?host=/run/pg",
        "postgresql://app:pw@/appdb?host=%2Frun%2Fpg&port=5433",
        "postgresql://app:pw@%2Frun%2Fpg/appdb",
        "postgresql://app:pw@%2Frun%2Fpg:5433/appdb",
        "postgresql://app:pw@/appdb?host=/run/a,/run/b&port=5433,5434",
        "postgresql://app:pw@/appdb?host=/run/a,db.example&port=5433",
    ],
)
def test_unix_socket_forms_mean_the_same_to_the_driver(dsn: str) -> None:
    ours = parse_dsn(dsn)
    user, password, hosts, database = driver_view(dsn)
    assert [(h, p or 5432) for h, p in ours.hosts] == hosts
    assert (ours.user, ours.database, password in ours.secrets) == (user, database, True)


def test_a_dsn_without_any_host_is_refused() -> None:
    for dsn in ("postgresql://app:pw@/appdb", "postgresql:///appdb", "postgresql://app:pw@/appdb?host="):
        with pytest.raises(DsnError, match="names no host"):
            parse_dsn(dsn)
    with pytest.raises(DsnError, match="2 ports for 3 hosts"):
        parse_dsn("postgresql://app:pw@/appdb?host=/a,/b,/c&port=1,2")
