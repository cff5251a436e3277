"""Amounts, account ids and keys: the one accepted form, and a sentence for everything else."""

from __future__ import annotations

from decimal import Decimal

import msgspec
import pytest

from fasterdb_sidecar.ledger.money import (
    JOB_KEY_PREFIX,
    MAX_AMOUNT,
    MoneyError,
    amount_from_json,
    check_account_id,
    check_key,
    parse_amount,
    transfer_request,
)


@pytest.mark.parametrize(("text", "value"), [("10.50", "10.50"), ("10.5", "10.50"), ("7", "7.00"), ("0.01", "0.01")])
def test_amounts_in_the_accepted_form_are_canonical(text: str, value: str) -> None:
    assert parse_amount(text) == Decimal(value) and str(parse_amount(text)) == value


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("0", "greater than zero"),
        ("-1", "greater than zero"),
        ("1.005", "more than 2 decimals"),
        ("05", "leading zeros"),
        ("1E+2", "decimal number"),
        (" 5 ", "decimal number"),
        ("1_000", "decimal number"),
        ("١٢", "decimal number"),
        ("", "decimal number"),
        (str(MAX_AMOUNT + 1), "out of range"),
    ],
)
def test_everything_else_is_refused_with_a_reason(text: str, why: str) -> None:
    with pytest.raises(MoneyError, match=why):
        parse_amount(text)


def test_zero_is_a_balance_but_not_an_amount() -> None:
    assert parse_amount("0", allow_zero=True) == Decimal("0.00")
    with pytest.raises(MoneyError, match="must not be negative"):
        parse_amount("-1", allow_zero=True)


def test_json_amounts_are_read_from_their_text_never_through_a_float() -> None:
    assert amount_from_json(msgspec.Raw(b'"0.10"')) == Decimal("0.10")
    assert amount_from_json(msgspec.Raw(b"0.1")) == Decimal("0.10")  # a float would be 0.1000000000000000055...
    for bad in (b"true", b"null", b'"10.50', b"[1]"):
        with pytest.raises(MoneyError):
            amount_from_json(msgspec.Raw(bad))


def test_account_ids_and_keys() -> None:
    assert check_account_id(2**63 - 1, "id") == 2**63 - 1
    for bad in (0, -1, 2**63, True):
        with pytest.raises(MoneyError, match="positive 64-bit"):
            check_account_id(bad, "id")
    assert check_key("invoice-1") == "invoice-1"
    for bad in ("", "x" * 201, "tab\there", JOB_KEY_PREFIX + "1:2"):
        with pytest.raises(MoneyError):
            check_key(bad)


def test_a_transfer_needs_two_different_accounts() -> None:
    with pytest.raises(MoneyError, match="must differ"):
        transfer_request(1, 1, Decimal("1.00"), "k")
    assert transfer_request(1, 2, Decimal("1.00"), None).idempotency_key == ""  # a job item: the store assigns it
