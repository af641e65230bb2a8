"""Keep-the-maximum on Redis: atomic on the server, and published in the same step."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings as django_settings

from revocation import monotonic
from tests.support import wait_until

pytestmark = pytest.mark.skipif(not django_settings.REDIS_URL, reason="needs REDIS_URL")


def test_django_redis_cache_is_atomic_across_processes() -> None:
    # So fences._mirror needs no read-back repair from the database.
    assert monotonic.is_atomic()
    assert monotonic.redis_client() is not None


def test_a_raise_publishes_what_each_key_holds_afterwards_in_chunks() -> None:
    client = monotonic.redis_client()
    channel = monotonic.channel("test:monotonic")
    pubsub = client.pubsub()
    pubsub.subscribe(channel)
    wait_until(lambda: pubsub.get_message(timeout=1), timeout=30, what="the subscription")
    monotonic.raise_many({"test:higher": 900}, 60)
    values = {f"test:key-{n}": 1_764_000_000_000_000 + n for n in range(2500)}
    values["test:higher"] = 100  # lower than what it holds: stays 900, published as 900

    monotonic.raise_many(values, 60, publish=channel, names=[f"n{k}" for k in values])

    messages: list[str] = []

    def received() -> bool:
        message: Any = pubsub.get_message(timeout=1)
        if message and message["type"] == "message":
            messages.append(message["data"].decode())
        return len(messages) == 3

    wait_until(received, timeout=30, what="three messages")
    pubsub.close()
    assert [len(m.splitlines()) for m in messages] == [1000, 1000, 501]
    published = dict(line.rsplit(" ", 1) for m in messages for line in m.splitlines())
    # Exact: Lua would print a number above 1e14 rounded if the script formatted it.
    expected = {f"n{k}": str(v) for k, v in values.items()} | {"ntest:higher": "900"}
    assert published == expected
    assert monotonic.get_many(["test:higher", "test:key-7"]) == {
        "test:higher": 900,
        "test:key-7": 1_764_000_000_000_007,
    }
