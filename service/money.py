"""Money and transfer requests: Decimal only (never float), at most two decimals, bounded."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

MAX_AMOUNT = Decimal("1000000000000000")  # 10^15: far beyond any real transfer, safely numeric
MAX_BALANCE = Decimal("100000000000000000")  # 10^17
INT64_MAX = 2**63 - 1
MAX_KEY_LENGTH = 200
CENT = Decimal("0.01")


class MoneyError(ValueError):
    """A value that is not acceptable money; the message says why in one sentence."""


def parse_amount(value: Decimal | int | str, *, what: str = "amount", allow_zero: bool = False) -> Decimal:
    """A positive (or, with allow_zero, non-negative) Decimal with at most two decimals."""
    if isinstance(value, bool) or isinstance(value, float):
        raise MoneyError(f'{what} must be a decimal string such as "10.50"')
    try:
        amount = value if isinstance(value, Decimal) else Decimal(str(value).strip())
    except ArithmeticError:
        raise MoneyError(f"{what} is not a number") from None
    if not amount.is_finite():
        raise MoneyError(f"{what} must be a finite number")
    if amount < 0 or (amount == 0 and not allow_zero):
        raise MoneyError(f"{what} must be greater than zero" if not allow_zero else f"{what} must not be negative")
    limit = MAX_BALANCE if allow_zero else MAX_AMOUNT
    if amount > limit:
        raise MoneyError(f"{what} is out of range (at most {limit})")
    cents = amount.quantize(CENT)  # exact here: amount <= 10^17 needs at most 20 digits
    if cents != amount:
        raise MoneyError(f"{what} has more than 2 decimals")
    return cents


def check_account_id(value: int, what: str) -> int:
    """An account id: a positive 64-bit integer."""
    if not 0 < value <= INT64_MAX:
        raise MoneyError(f"{what} must be a positive 64-bit integer")
    return value


def check_key(key: str) -> str:
    """An idempotency key: 1–200 printable characters."""
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise MoneyError(f"idempotency_key must be 1-{MAX_KEY_LENGTH} printable characters")
    return key


@dataclass(frozen=True)
class TransferRequest:
    """A validated transfer."""

    from_account: int
    to_account: int
    amount: Decimal
    idempotency_key: str


def transfer_request(
    from_account: int, to_account: int, amount: Decimal | int | str, key: str | None
) -> TransferRequest:
    """One transfer's fields checked; MoneyError says what is wrong.

    ``key`` None (a job item without a key) leaves the key empty for the job store to assign.
    """
    src = check_account_id(from_account, "from_account")
    dst = check_account_id(to_account, "to_account")
    if src == dst:
        raise MoneyError("from_account and to_account must differ")
    return TransferRequest(src, dst, parse_amount(amount), "" if key is None else check_key(key))


def validate_account(account_id: int, balance: Decimal) -> tuple[int, Decimal]:
    """An account id and a starting balance (zero allowed)."""
    return check_account_id(account_id, "id"), parse_amount(balance, what="balance", allow_zero=True)
