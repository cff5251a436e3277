"""Field types and the error body shared by every part of the contract."""

from __future__ import annotations

from typing import Annotated

import msgspec
from msgspec import Meta, Raw

from .common import *  # noqa: F403
from .vocabulary import *  # noqa: F403

# -- shared field types ------------------------------------------------------------------------

AccountId = Annotated[int, Meta(ge=1, le=2**63 - 1, description="a positive 64-bit account id")]
IdempotencyKey = Annotated[
    str,
    Meta(min_length=1, max_length=200, description="1-200 printable characters; applies the transfer at most once"),
]
# The exact JSON text of an amount: a decimal string (or a JSON number) with at most 2 decimals,
# ASCII digits only. It is kept as raw text so that nothing is read through a float.
AMOUNT_PATTERN = r"^(0|[1-9][0-9]{0,17})(\.[0-9]{1,2})?$"
Amount = Annotated[
    Raw,
    Meta(
        extra_json_schema={
            "anyOf": [
                {"type": "string", "pattern": AMOUNT_PATTERN},
                {"type": "number", "minimum": 0, "description": "read as its exact JSON text, never as a float"},
            ],
            "examples": ["10.50"],
            "description": "a decimal with at most 2 decimals: a string (preferred) or a JSON number of that form",
        }
    ),
]
Money = Annotated[str, Meta(description="a decimal string, two decimals", examples=["89.50"])]
Timestamp = Annotated[str, Meta(description="ISO 8601, UTC", examples=["2026-11-24T17:51:00.315Z"])]


class ErrorDetail(msgspec.Struct):
    """What went wrong: a snake_case code and one sentence."""

    code: str
    message: str


class ErrorBody(msgspec.Struct):
    """The body of every error answer."""

    error: ErrorDetail
