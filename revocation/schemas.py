"""Shapes of the JSON API (django-ninja schemas; they generate the OpenAPI document).

Input types are strict: JSON `true` is not the user id 1, `"yes"` is not `true`
and `"1"` is not an id. (`1.0` is: JSON Schema calls it an integer.) Strings are
refused with NUL characters (the database would refuse them later) and, for
names, when blank.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from django.utils.translation import gettext
from ninja import Field, Schema
from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    StrictBool,
    StrictInt,
    StrictStr,
    Tag,
)

# Largest id a 64-bit primary key can hold: larger values are rejected, not sent to SQL.
MAX_ID = 2**63 - 1


def _whole(value: Any) -> Any:
    """Take a JSON integer also when written `42.0`; leave anything else to the strict check."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


Id = Annotated[StrictInt, Field(ge=1, le=MAX_ID), BeforeValidator(_whole)]

# These patterns document the rules below for clients and test generators; the
# validators enforce them (in linear time, with Python's idea of a blank).
NO_NUL = r"^[^\x00]*$"
NOT_BLANK = r"^[^\x00]*[^\s\x00][^\x00]*$"


def _no_nul(value: str) -> str:
    """Refuse NUL, which PostgreSQL cannot store in text."""
    if "\x00" in value:
        raise ValueError(gettext("must not contain NUL characters"))
    return value


def _not_blank(value: str) -> str:
    """Refuse a blank name: it must never stand for "no filter"."""
    if not value.strip():
        raise ValueError(gettext("must not be blank"))
    return value


# Names that must mean something: not blank, no NUL, and not too long for their column.
_NAMED: dict[str, Any] = {"pattern": NOT_BLANK}
GroupName = Annotated[
    StrictStr,
    Field(min_length=1, max_length=150, json_schema_extra=_NAMED),
    AfterValidator(_no_nul),
    AfterValidator(_not_blank),
]
ScopeName = Annotated[
    StrictStr,
    Field(min_length=1, max_length=64, json_schema_extra=_NAMED),
    AfterValidator(_no_nul),
    AfterValidator(_not_blank),
]
ScopeText = Annotated[
    StrictStr,
    Field(min_length=1, max_length=255, json_schema_extra=_NAMED),
    AfterValidator(_no_nul),
    AfterValidator(_not_blank),
]
# A scope value given as a number: a signed 64-bit integer, never a bool or a fraction.
ScopeNumber = Annotated[StrictInt, Field(ge=-(2**63), le=MAX_ID), BeforeValidator(_whole)]


def _kind(value: Any) -> str:
    """Name the branch of a scope value: errors then read `value.string` or `value.integer`."""
    return "string" if isinstance(value, str) else "integer"


ScopeValue = Annotated[
    Annotated[ScopeText, Tag("string")] | Annotated[ScopeNumber, Tag("integer")],
    Discriminator(_kind),
]
Reason = Annotated[
    StrictStr,
    Field(max_length=255, json_schema_extra={"pattern": NO_NUL}),
    AfterValidator(_no_nul),
]


class Error(Schema):
    """Every error response."""

    detail: str = Field(examples=["not logged in"])


class SessionOut(Schema):
    """One of the user's sessions; `id` is opaque and never the session key."""

    id: int
    current: bool = Field(description="whether this is the session making the request")
    ip: str | None
    user_agent: str
    device: str = Field(
        description="the browser and system, as they described themselves at sign-in",
        examples=["Chrome on Windows 11"],
    )
    country: str = Field(
        description="ISO 3166 country code of the IP, with a GeoIP database; else empty",
        examples=["DE"],
    )
    city: str = Field(description="city of the IP, with a GeoIP database", examples=["Berlin"])
    created_at: datetime = Field(description="when this session signed in")
    last_seen_at: datetime
    expires_at: datetime | None = Field(
        description="when this session ends if it is not used again: the earliest of "
        "last activity + REVOCATION_IDLE_TIMEOUT, sign-in + REVOCATION_MAX_LIFETIME and, "
        "for the current session, its own expiry. For another session an upper bound "
        "(its own expiry is not known here), and null when neither limit is set. Any "
        "session can end sooner: a logout, a revocation."
    )


class SessionList(Schema):
    items: list[SessionOut]
    count: int


class RevocationOut(Schema):
    """A revocation request: who is targeted and how far the workers got."""

    id: int
    state: Literal["pending", "running", "done", "failed"]
    target: str = Field(examples=["group staff"])
    reason: str
    users_total: int
    users_done: int
    sessions_revoked: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str


class RevocationList(Schema):
    items: list[RevocationOut]
    count: int


TARGET_FIELDS = ("user_ids", "group", "scope", "value")
_GIVEN = {"not": {"type": "null"}}
_NOT_GIVEN = {"type": "null"}


def _only(*given: str) -> dict[str, Any]:
    """Return the JSON Schema of a body whose one target is made of the fields `given`."""
    fields = {name: _GIVEN if name in given else _NOT_GIVEN for name in TARGET_FIELDS}
    return {"required": list(given), "properties": {**fields, "all": {"const": False}}}


# "Exactly one target" in the document too, so that clients and generators know it.
EXACTLY_ONE_TARGET: dict[str, Any] = {
    "oneOf": [
        _only("user_ids"),
        _only("group"),
        _only("scope", "value"),
        {
            "required": ["all"],
            "properties": {**dict.fromkeys(TARGET_FIELDS, _NOT_GIVEN), "all": {"const": True}},
        },
    ]
}


class RevocationIn(Schema):
    """Exactly one target: `user_ids`, `group`, `scope` with `value`, or `all: true`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=EXACTLY_ONE_TARGET)

    user_ids: list[Id] | None = Field(None, min_length=1, max_length=10_000)
    group: GroupName | None = None
    scope: ScopeName | None = Field(None, examples=["org"])
    value: ScopeValue | None = Field(None, examples=[42])
    all: StrictBool = Field(False, description="log out every user; the only way to reach everyone")
    reason: Reason = Field("", description="kept in the audit log")


class Page(Schema):
    """Limit/offset paging of a list."""

    limit: int = Field(20, ge=1, le=100)
    offset: int = Field(0, ge=0, le=1_000_000_000)
