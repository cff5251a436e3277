"""Money and transfer requests: Decimal only (never float), at most two decimals, bounded.

Amounts are read from their exact text, in one documented form: ASCII digits, optionally a point
and one or two decimals, no sign, no exponent, no spaces or separators, no leading zeros. Anything
else ("1E+2", " 5 ", "1_000", "١٢", "-1", "1.005") is refused with a sentence saying why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

import msgspec

MAX_AMOUNT = Decimal("1000000000000000")  # 10^15: far beyond any real transfer, safely numeric
MAX_BALANCE = Decimal("100000000000000000")  # 10^17
INT64_MAX = 2**63 - 1
MAX_KEY_LENGTH = 200
CENT = Decimal("0.01")
# Reserved for the keys the sidecar derives for job items; clients cannot use it.
JOB_KEY_PREFIX = "fasterdb-job:"
_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?", re.ASCII)


class MoneyError(ValueError):
    """A value that is not acceptable money; the message says why in one sentence."""


def parse_amount(text: str, *, what: str = "amount", allow_zero: bool = False) -> Decimal:
    """A positive (or, with allow_zero, non-negative) amount from its text, in the one accepted form."""
    if len(text) > 40 or not _NUMBER.fullmatch(text):
        raise MoneyError(f'{what} must be a decimal number such as "10.50" (ASCII digits and a point)')
    if text.startswith("-"):
        raise MoneyError(f"{what} must not be negative" if allow_zero else f"{what} must be greater than zero")
    whole, _, decimals = text.partition(".")
    if len(decimals) > 2:
        raise MoneyError(f"{what} has more than 2 decimals")
    if len(whole) > 1 and whole.startswith("0"):
        raise MoneyError(f"{what} must not have leading zeros")
    amount = Decimal(text)
    if amount == 0 and not allow_zero:
        raise MoneyError(f"{what} must be greater than zero")
    limit = MAX_BALANCE if allow_zero else MAX_AMOUNT
    if amount > limit:
        raise MoneyError(f"{what} is out of range (at most {limit})")
    return amount.quantize(CENT)  # canonical: "10.5" is 10.50


def amount_from_json(raw: msgspec.Raw, *, what: str = "amount", allow_zero: bool = False) -> Decimal:
    """An amount from the exact JSON text of a string or a number (never through a float)."""
    data = bytes(raw)
    if data.startswith(b'"'):
        try:
            text = msgspec.json.decode(data, type=str)
        except msgspec.DecodeError:
            raise MoneyError(f"{what} is not a valid JSON string") from None
    elif data[:1].isdigit() or data.startswith(b"-"):
        text = data.decode("ascii", "replace")
    else:
        raise MoneyError(f'{what} must be a decimal string such as "10.50"')
    return parse_amount(text, what=what, allow_zero=allow_zero)


def check_account_id(value: int, what: str) -> int:
    """An account id: a positive 64-bit integer."""
    if isinstance(value, bool) or not 0 < value <= INT64_MAX:
        raise MoneyError(f"{what} must be a positive 64-bit integer")
    return value


def check_key(key: str, what: str = "idempotency_key") -> str:
    """An idempotency key: 1-200 printable characters, not in the namespace reserved for job items."""
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise MoneyError(f"{what} must be 1-{MAX_KEY_LENGTH} printable characters")
    if key.startswith(JOB_KEY_PREFIX):
        raise MoneyError(f"{what} must not start with {JOB_KEY_PREFIX!r} (reserved for the keys of job items)")
    return key


@dataclass(frozen=True)
class TransferRequest:
    """A validated transfer."""

    from_account: int
    to_account: int
    amount: Decimal
    idempotency_key: str


def transfer_request(from_account: int, to_account: int, amount: Decimal, key: str | None) -> TransferRequest:
    """One transfer's fields checked; MoneyError says what is wrong.

    ``key`` None (a job item without a key) leaves the key empty for the job store to assign.
    """
    src = check_account_id(from_account, "from_account")
    dst = check_account_id(to_account, "to_account")
    if src == dst:
        raise MoneyError("from_account and to_account must differ")
    return TransferRequest(src, dst, amount, "" if key is None else check_key(key))


def validate_account(account_id: int, balance: Decimal) -> tuple[int, Decimal]:
    """An account id and a starting balance (zero allowed)."""
    return check_account_id(account_id, "id"), balance
