"""Shapes of the JSON API (django-ninja schemas; they generate the OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from ninja import Field, Schema
from pydantic import ConfigDict

# Largest id a 64-bit primary key can hold: larger values are rejected, not sent to SQL.
MAX_ID = 2**63 - 1
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


class Error(Schema):
    """Every error response."""

    detail: str = Field(examples=["staff only"])


class SessionOut(Schema):
    """One of the user's sessions; `id` is opaque and never the session key."""

    id: int
    current: bool = Field(description="whether this is the session making the request")
    ip: str | None
    user_agent: str
    device: str = Field(examples=["Chrome 120 on Windows 10"])
    created_at: datetime = Field(description="when this session signed in")
    last_seen_at: datetime


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


class RevocationIn(Schema):
    """Exactly one target: `user_ids`, `group`, `scope` with `value`, or `all: true`."""

    model_config = ConfigDict(extra="forbid")

    user_ids: list[Id] | None = Field(None, min_length=1, max_length=10_000)
    group: str | None = Field(None, min_length=1, max_length=150)
    scope: str | None = Field(None, min_length=1, max_length=64, examples=["org"])
    value: Annotated[str, Field(max_length=255)] | int | None = Field(None, examples=[42])
    all: bool = Field(False, description="log out every user; needs no other target")
    reason: str = Field("", max_length=255, description="kept in the audit log")


class Page(Schema):
    """Limit/offset paging of a list."""

    limit: int = Field(20, ge=1, le=100)
    offset: int = Field(0, ge=0, le=1_000_000_000)
