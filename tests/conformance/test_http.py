"""HTTP conventions and input parsing, as load balancers, browsers and odd clients exercise them.

Each failure observed on the old main has a case here: HEAD answered 404, a wrong method 404,
401 without WWW-Authenticate, 500s from repeated or non-ASCII query values and 4,300-digit
integers, Arabic-Indic digits read as numbers, amounts such as "1E+2" accepted, /docs from a CDN.
"""

from __future__ import annotations

import json
import re

import httpx
import pytest

from tests.conformance.conftest import AUTH, TOKEN
from tests.harness import SidecarProcess

HUGE = "9" * 5000  # Python refuses int() of more than 4,300 digits: this used to be a 500


def documented(sidecar: SidecarProcess) -> dict[str, set[str]]:
    """Every documented path (templated ids filled in) and its methods."""
    doc = httpx.get(sidecar.url + "/openapi.json", timeout=10).json()
    return {
        path.replace("{account_id}", "1").replace("{job_id}", "1"): {m.upper() for m in item}
        for path, item in doc["paths"].items()
    }


def test_head_answers_like_get_without_a_body(admin_sidecar: SidecarProcess) -> None:
    for path, methods in documented(admin_sidecar).items():
        if "GET" not in methods:
            continue
        query = "?interval=0.1" if path == "/pools/stream" else ""
        head = httpx.head(admin_sidecar.url + path + query, headers=AUTH, timeout=10)
        assert head.content == b"", path
        if path.endswith("/stream"):  # a GET would never end
            assert head.status_code == 200 and head.headers["content-type"].startswith("text/event-stream")
            continue
        get = httpx.get(admin_sidecar.url + path, headers=AUTH, timeout=10)
        assert head.status_code == get.status_code, path
        assert head.headers["content-type"] == get.headers["content-type"], path
        if path in ("/health/live", "/openapi.json") or path.startswith("/docs"):  # bodies that never change
            assert int(head.headers["content-length"]) == len(get.content), path


def test_wrong_method_is_405_with_allow_and_options_lists_them(admin_sidecar: SidecarProcess) -> None:
    for path, methods in documented(admin_sidecar).items():
        allowed = methods | {"OPTIONS"} | ({"HEAD"} if "GET" in methods else set())
        for wrong in sorted({"GET", "POST", "PUT", "PATCH", "DELETE"} - methods):
            response = httpx.request(wrong, admin_sidecar.url + path, headers=AUTH, timeout=10)
            assert response.status_code == 405, (wrong, path, response.status_code)
            assert {m.strip() for m in response.headers["allow"].split(",")} == allowed, path
            assert response.json()["error"]["code"] == "method_not_allowed"
        options = httpx.options(admin_sidecar.url + path, timeout=10)
        assert options.status_code == 204 and {m.strip() for m in options.headers["allow"].split(",")} == allowed
    unknown = httpx.delete(admin_sidecar.url + "/no/such/thing", timeout=10)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "not_found"


def test_401_names_the_bearer_scheme(admin_sidecar: SidecarProcess) -> None:
    missing = httpx.get(admin_sidecar.url + "/jobs", timeout=10)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == 'Bearer realm="fasterdb-sidecar"'
    wrong = httpx.get(admin_sidecar.url + "/jobs", headers={"Authorization": "Bearer not-the-token-at-all"}, timeout=10)
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"] == 'Bearer realm="fasterdb-sidecar", error="invalid_token"'
    assert TOKEN not in admin_sidecar.logs()


@pytest.mark.parametrize(
    ("path", "parameter"),
    [
        ("/health/db?replicas=true&replicas=false", "replicas"),
        ("/health/db?replicas=", "replicas"),
        ("/health/replicas?max_lag_seconds=1&max_lag_seconds=2", "max_lag_seconds"),
        ("/health/replicas?max_lag_bytes=16mb&max_lag_bytes=1kb", "max_lag_bytes"),
        ("/health/replicas?max_lag_bytes=%D9%A1%D9%A2MB", "max_lag_bytes"),  # Arabic-Indic digits
        ("/health/replicas?max_lag_seconds=1e1", "max_lag_seconds"),
        ("/health/replicas?replica=replica-1&replica=replica-1", "replica"),
        ("/pools/stream?interval=1&interval=0", "interval"),
        ("/jobs?limit=1&limit=2", "limit"),
        ("/jobs?limit=%C2%B2", "limit"),  # superscript two
        (f"/jobs?limit={HUGE}", "limit"),
        ("/accounts/%C2%B2", "account_id"),
        ("/accounts/%D9%A1", "account_id"),  # used to be read as account 1
        (f"/accounts/{HUGE}", "account_id"),
        ("/jobs/%C2%B2", "job_id"),
        ("/health/db?replica=true", "replica"),  # unknown parameter (a typo of replicas)
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(admin_sidecar: SidecarProcess, path: str, parameter: str) -> None:
    response = httpx.get(admin_sidecar.url + path, headers=AUTH, timeout=10)
    assert response.status_code == 400, response.text
    message = response.json()["error"]["message"]
    assert response.json()["error"]["code"] == "invalid_parameter" and f"'{parameter}'" in message
    assert "[" not in message  # never a Python list


def test_bad_path_parameters_of_a_post(admin_sidecar: SidecarProcess) -> None:
    for path in ("/jobs/%C2%B2/cancel", f"/jobs/{HUGE}/cancel", "/jobs/0/cancel"):
        response = httpx.post(admin_sidecar.url + path, headers=AUTH, timeout=10)
        assert response.status_code == 400 and "'job_id'" in response.json()["error"]["message"], path


@pytest.mark.parametrize("amount", ["١٢", "1_000", " 5 ", "1E+2", "-1", "1.005", "05", "0x10", ""])
def test_amounts_only_in_the_documented_form(admin_sidecar: SidecarProcess, amount: str) -> None:
    body = {"from_account": 1, "to_account": 2, "amount": amount, "idempotency_key": f"form-{amount!r}"}
    response = httpx.post(admin_sidecar.url + "/transfers", json=body, headers=AUTH, timeout=10)
    assert response.status_code == 422 and response.json()["error"]["code"] == "invalid_transfer", response.text


def test_json_numbers_are_read_exactly_and_huge_integers_refused(admin_sidecar: SidecarProcess) -> None:
    raw = b'{"from_account": 1, "to_account": 2, "amount": 0.10, "idempotency_key": "exact-number"}'
    response = httpx.post(admin_sidecar.url + "/transfers", content=raw, headers=AUTH, timeout=10)
    assert response.status_code == 200 and response.json()["amount"] == "0.10"
    for raw in (
        b'{"from_account": 1, "to_account": 2, "amount": 1e2, "idempotency_key": "exponent"}',
        b'{"from_account": ' + HUGE.encode() + b', "to_account": 2, "amount": "1", "idempotency_key": "huge"}',
        b'{"from_account": 1, "to_account": 2, "amount": "1", "idempotency_key": "extra", "note": "typo"}',
    ):
        response = httpx.post(admin_sidecar.url + "/transfers", content=raw, headers=AUTH, timeout=10)
        assert response.status_code == 422, response.text
    assert "Traceback" not in admin_sidecar.logs()


def test_sse_events_carry_an_id_and_the_stream_a_retry(admin_sidecar: SidecarProcess) -> None:
    fields: list[dict[str, str]] = [{}]
    with httpx.stream("GET", admin_sidecar.url + "/pools/stream?interval=0.1", timeout=10) as response:
        for line in response.iter_lines():
            if not line:
                if len(fields) == 3:
                    break
                fields.append({})
                continue
            name, _, value = line.partition(":")
            fields[-1][name] = value.strip()
    events = [f for f in fields if f][:2]
    assert [e["id"] for e in events] == ["1", "2"] and all(e["event"] == "pools" for e in events)
    assert events[0]["retry"] == "3000" and "retry" not in events[1]
    assert json.loads(events[0]["data"])["pools"][0]["name"] == "primary"


def test_docs_work_offline(admin_sidecar: SidecarProcess) -> None:
    import importlib.resources

    page = httpx.get(admin_sidecar.url + "/docs", timeout=10)
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert not re.search(r"(src|href)=\"(https?:)?//", page.text)  # nothing from another host
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for src in re.findall(r"(?:src|href)=\"([^\"]+)\"", page.text):
        asset = httpx.get(f"{admin_sidecar.url}/{src}", timeout=10)
        assert asset.status_code == 200, src
        head = httpx.head(f"{admin_sidecar.url}/{src}", timeout=10)  # routed like operations, if not documented
        assert head.status_code == 200 and int(head.headers["content-length"]) == len(asset.content), src
    slash = httpx.get(admin_sidecar.url + "/docs/", timeout=10)  # the same page, its links relative to /docs/
    for src in re.findall(r"(?:src|href)=\"([^\"]+)\"", slash.text):
        assert httpx.get(f"{admin_sidecar.url}/docs/{src}", timeout=10).status_code == 200, src
    doc = httpx.get(admin_sidecar.url + "/openapi.json", timeout=10).json()
    assert not [path for path in doc["paths"] if path.startswith("/docs/")]  # the page's files are no operations
    bundle = httpx.get(admin_sidecar.url + "/docs/swagger-ui-bundle.js", timeout=10).content
    assert bundle == (importlib.resources.files("swagger_ui") / "static" / "swagger-ui-bundle.js").read_bytes()
    init = httpx.get(admin_sidecar.url + "/docs/init.js", timeout=10).text
    assert 'new URL("../openapi.json", document.currentScript.src)' in init and "http" not in init


def raw_exchange(sidecar: SidecarProcess, request: bytes, limit: int = 1 << 20) -> bytes:
    """Send ``request`` over a raw socket; everything the server sends until it closes (or ``limit``)."""
    import socket

    with socket.create_connection(("127.0.0.1", sidecar.port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while len(data) < limit and (chunk := sock.recv(65536)):
            data += chunk
    return data


def split_answer(answer: bytes) -> tuple[int, dict[str, str], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/health/live", 200),
        ("/health/db", 200),
        ("/pools", 200),
        ("/db/activity", 200),
        ("/metrics", 200),
        ("/", 200),
        ("/openapi.json", 200),
        ("/jobs", 401),  # an error rendered by the app (ServiceError)
        ("/nope", 404),  # one rendered in front of it
        ("/pools?pool=x&pool=y", 400),
    ],
)
def test_every_answer_has_a_content_length_never_chunked(admin_sidecar: SidecarProcess, path: str, status: int) -> None:
    """Issue 24: every answer was chunked (an extra write per response, unreadable to HTTP/1.0)."""
    for version in ("1.1", "1.0"):
        connection = b"Connection: close\r\n" if version == "1.1" else b""
        request = f"GET {path} HTTP/{version}\r\nHost: sidecar\r\n".encode() + connection + b"\r\n"
        code, headers, body = split_answer(raw_exchange(admin_sidecar, request))
        assert code == status, (path, version, body[:200])
        assert "transfer-encoding" not in headers, (path, version, headers)
        assert int(headers["content-length"]) == len(body) > 0, (path, version)


def test_an_http_1_0_stream_is_delimited_by_closing_not_chunked(admin_sidecar: SidecarProcess) -> None:
    import socket

    with socket.create_connection(("127.0.0.1", admin_sidecar.port), timeout=10) as sock:
        sock.sendall(b"GET /pools/stream?interval=0.1 HTTP/1.0\r\n\r\n")
        data = b""
        while data.count(b"\n\n") < 3:  # the head, then two whole events
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk
    code, headers, body = split_answer(data)
    assert code == 200 and headers["content-type"] == "text/event-stream" and headers["connection"] == "close"
    assert "transfer-encoding" not in headers and "content-length" not in headers
    assert body.startswith(b"id: 1\nevent: pools\ndata: {") and b"\n\nid: 2\nevent: pools\n" in body
