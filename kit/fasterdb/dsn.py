"""PostgreSQL DSNs, read exactly as the driver reads them, or refused when that would be ambiguous.

asyncpg (``connect_utils._parse_connect_dsn_and_args``) splits the authority at the *first* ``@``,
the userinfo at the first ``:``, and percent-decodes each part; ``urllib``'s ``.password`` splits
at the *last* ``@``. A password with an unencoded ``@``, ``/``, ``?`` or ``#`` therefore means one
thing to the driver and another to everything else (the log mask, humans): such a DSN is refused,
naming the character and how to percent-encode it. ``tests/unit/test_dsn.py`` proves against
asyncpg's own parser that every DSN accepted here is read the same way by both.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qs, quote, unquote, urlsplit

_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
TARGET_SESSION_ATTRS = ("any", "primary", "standby", "read-write", "read-only", "prefer-standby")
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# Query parameters that name a file the driver opens when it connects (not at start-up).
SSL_FILES = ("sslrootcert", "sslcert", "sslkey", "sslcrl")


class DsnError(ValueError):
    """A DSN that cannot be used; the message never contains the DSN or its password."""


@dataclass(frozen=True)
class Dsn:
    """What the driver will use of a DSN (the password only for masking, never shown)."""

    user: str | None
    hosts: list[tuple[str, int | None]]
    database: str | None
    target_session_attrs: str | None  # from the DSN's query, None when it does not say
    secrets: tuple[str, ...] = field(default=(), repr=False)  # the password as written and as decoded
    sslmode: str | None = None  # from the DSN's query, None when it does not say
    ssl_files: dict[str, str] = field(default_factory=dict)  # SSL_FILES the query names -> path

    def safe(self) -> str:
        """``postgresql://user@host:port,host2:port/db`` without any credential, for messages."""
        hosts = ",".join(f"{h}:{p}" if p else h for h, p in self.hosts)
        user = f"{self.user}@" if self.user else ""
        return f"postgresql://{user}{hosts}/{self.database or ''}"


ENCODE_HINT = "if the password holds '@', ':', '/', '?', '#' or '%', percent-encode them (%40 %3A %2F %3F %23 %25)"


def _hint(char: str) -> str:
    encoded = {"@": "%40", "/": "%2F", "?": "%3F", "#": "%23", "%": "%25", ":": "%3A"}[char]
    return f"percent-encode {char!r} in the password as {encoded}"


def parse_dsn(text: str) -> Dsn:
    """Read ``text`` as asyncpg will; DsnError (without the secret) when it is unusable or ambiguous."""
    scheme, sep, rest = text.partition("://")
    if not sep or scheme not in ("postgresql", "postgres"):
        raise DsnError("not a postgresql:// URL (wrong scheme)")
    # Where the driver's authority ends: the first '/', '?' or '#' after '://' (urllib's rule).
    end = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    authority, tail = rest[:end], rest[end:]
    # An '@' after the authority means a password with an unencoded '/', '?' or '#' cut the DSN
    # short (the driver would connect to the "host" before it). Allowed only in a query value of a
    # DSN that has its userinfo (postgresql://u:p@h/db?application_name=me@example).
    before_fragment, _, fragment = tail.partition("#")
    path = before_fragment.partition("?")[0]
    if "@" in path or "@" in fragment or ("@" in tail and "@" not in authority):
        raise DsnError(f"ambiguous DSN: an '@' follows the host; {ENCODE_HINT}")
    if authority.count("@") > 1:
        raise DsnError("ambiguous DSN: '@' appears more than once before the host; " + _hint("@"))
    userinfo, _, hostlist = authority.rpartition("@") if "@" in authority else ("", "", authority)
    user_raw, _, password_raw = userinfo.partition(":")
    for part, what in ((user_raw, "user name"), (password_raw, "password")):
        if _ESCAPE.search(part):
            raise DsnError(f"the {what} holds a '%' that starts no %XX escape; " + _hint("%"))
    try:
        parsed = urlsplit(text)
        query = parse_qs(parsed.query, strict_parsing=True, keep_blank_values=True) if parsed.query else {}
    except ValueError:
        raise DsnError("the DSN's query string (after '?') is malformed") from None
    if "" in query:
        raise DsnError(f"the DSN's query string has a parameter without a name; {ENCODE_HINT}")
    hosts = [_host_port(spec) for spec in hostlist.split(",")] if hostlist else _query_hosts(query)
    attrs = query["target_session_attrs"][-1] if "target_session_attrs" in query else None
    if attrs is not None and attrs not in TARGET_SESSION_ATTRS:
        raise DsnError(f"target_session_attrs must be one of {', '.join(TARGET_SESSION_ATTRS)}")
    sslmode = query["sslmode"][-1] if "sslmode" in query else None
    if sslmode is not None and sslmode not in SSL_MODES:
        raise DsnError(f"sslmode must be one of {', '.join(SSL_MODES)}")
    # As the driver reads them: the last value of each, percent-decoded, not expanded (no '~').
    ssl_files = {name: query[name][-1] for name in SSL_FILES if name in query}
    password = unquote(password_raw)
    query_password = query.get("password", [""])[-1]
    key_password = query.get("sslpassword", [""])[-1]
    secrets = tuple(s for s in {password_raw, password, query_password, key_password} if s)
    database = parsed.path[1:] if parsed.path.startswith("/") else parsed.path
    return Dsn(unquote(user_raw) or None, hosts, unquote(database) or None, attrs, secrets, sslmode, ssl_files)


def _query_hosts(query: dict[str, list[str]]) -> list[tuple[str, int | None]]:
    """The hosts of a DSN without one before its path, from ``?host=`` (and ``?port=``), as asyncpg
    reads them: ``postgresql://u:p@/db?host=/run/pg&port=5432`` is a Unix-socket directory."""
    spec = query.get("host", [""])[-1]
    if not spec:
        raise DsnError(
            "the DSN names no host (postgresql://user:password@host:port/database, or ?host=/socket/dir "
            f"for a Unix socket); {ENCODE_HINT}"
        )
    hosts = [(h, None) if h.startswith("/") else _host_port(h, decode=False) for h in spec.split(",")]
    ports_text = query.get("port", [""])[-1]
    if not ports_text:
        return hosts
    ports = [_port(p) for p in ports_text.split(",")]
    if len(ports) == 1:
        ports *= len(hosts)
    if len(ports) != len(hosts):
        raise DsnError(f"?port= names {len(ports)} ports for {len(hosts)} hosts")
    return [(h, p) for (h, _), p in zip(hosts, ports, strict=True)]


def _port(text: str) -> int:
    if not (text.isascii() and text.isdigit() and 0 < int(text) < 65536):
        raise DsnError(f"a port in the DSN is not a number between 1 and 65535; {ENCODE_HINT}")
    return int(text)


def _host_port(spec: str, *, decode: bool = True) -> tuple[str, int | None]:
    """One ``host[:port]`` of the host list, as the driver splits it."""
    if spec.startswith("["):  # IPv6
        match = re.fullmatch(r"\[([^\]]+)\](?::([0-9]+))?", spec)
        if not match:
            raise DsnError("an IPv6 host must be written [address] or [address]:port")
        return match.group(1), int(match.group(2)) if match.group(2) else None
    host, _, port = spec.partition(":")
    if not host:
        raise DsnError("a host in the DSN is empty")
    # "%2Frun%2Fpg" before the path is the socket directory /run/pg (the driver decodes it).
    return unquote(host) if decode else host, _port(port) if port else None


def each_host(text: str) -> list[str]:
    """One DSN per host of ``text`` (itself when it names one), everything else kept as written —
    for watching every server a multi-host DSN may reach, each on a connection of its own."""
    dsn = parse_dsn(text)
    if len(dsn.hosts) < 2:
        return [text]
    scheme, _, rest = text.partition("://")
    end = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    authority, tail = rest[:end], rest[end:]
    userinfo, at, hostlist = authority.rpartition("@") if "@" in authority else ("", "", authority)
    if hostlist:
        return [f"{scheme}://{userinfo}{at}{spec}{tail}" for spec in hostlist.split(",")]
    # ?host=a,b&port=1,2: one host (and its port) each, the other parameters as written.
    base, _, query = tail.partition("?")
    query, hash_, fragment = query.partition("#")
    params = [p for p in query.split("&") if not p.startswith(("host=", "port="))]
    out = []
    for host, port in dsn.hosts:
        own = [f"host={quote(host, safe='/')}", *([f"port={port}"] if port else []), *params]
        out.append(f"{scheme}://{authority}{base}?{'&'.join(own)}{hash_}{fragment}")
    return out
