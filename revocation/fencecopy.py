"""A copy of the recent fences in each web process: the fence check with no round trip.

Every mirror of a fence into Redis publishes, in the same Lua script, the value
it leaves stored (`monotonic.raise_many`), on a channel of the cache's key
space. Each web process subscribes from a thread of its own, loads from the
database every fence newer than its horizon (now minus SESSION_COOKIE_AGE) once
the subscription is confirmed, and applies what it hears from then on. Nothing
committed after the subscription can be missed, and nothing before it is missing
from the load.

The copy answers a check only while it can vouch for itself, and the caller reads
the cache as before otherwise (`fences.fences_of`), never a stale copy:

- it was loaded after its current subscription was confirmed: a reconnection
  (a network fault, a Redis restart) drops trust until the reload;
- it heard from the server recently: a PING goes out every HEARTBEAT seconds and
  its answer, which follows every message published before it, renews trust for
  GRACE seconds from when the PING was sent; a silent server or a stuck thread
  lets it lapse;
- the cache was not flushed since the load: a marker key written at the load
  must still be there at each heartbeat;
- the session signed in after its horizon: older fences are not kept;
- it holds at most REVOCATION_FENCE_COPY_MAX_KEYS fences (memory stays bounded):
  past that it stops answering until pruning brings it back under.

Only with Django's Redis cache as the default cache (the file, local-memory and
database caches have no pub/sub); off with REVOCATION_FENCE_COPY_MAX_KEYS = 0.
"""

from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.db import connection

from . import monotonic
from .app_settings import app_settings
from .models import RevocationFence

logger = logging.getLogger("revocation")

CHANNEL = "revocation:fences"
# Seconds between two PINGs, and how long an answered PING vouches for the copy.
HEARTBEAT = 0.5
GRACE = 2.0
# Seconds between two prunings of the fences that fell behind the horizon.
PRUNE_EVERY = 60.0
# Seconds to wait before subscribing again after Redis refused or dropped us.
RETRY_AFTER = 1.0
_MARKER = "revocation:fence-copy:"
_MARKER_TTL = 3600
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


class FenceCopy:
    """The fences of this process newer than `horizon`, kept current by one thread."""

    def __init__(self, max_keys: int) -> None:
        self.max_keys = max_keys
        # Key -> fence in epoch seconds. Replaced whole on a load; readers only .get().
        self.values: dict[str, float] = {}
        # Epoch seconds: every fence newer than this is in `values`.
        self.horizon = float("inf")
        # time.monotonic() until which the copy answers; 0 while it cannot vouch for itself.
        self.trusted_until = 0.0
        self.loads = 0
        self._loaded_at = 0.0  # time.monotonic() of the newest load; 0 while none counts
        self._pruned_at = 0.0
        self._subscribed = False  # a subscription was confirmed on the current connection
        self._failing = False  # a failure was logged and the copy has not recovered since
        self._marker = _MARKER + secrets.token_hex(8)
        # Serialises the writers (this thread, and requests raising their own fences):
        # a read-compare-write must not lower a fence another writer just raised.
        self._writing = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="revocation-fence-copy", daemon=True)

    def start(self) -> None:
        """Start the thread that subscribes, loads and listens."""
        self._thread.start()

    def stop(self) -> None:
        """Stop trusting the copy and end its thread."""
        self._distrust()
        self._stop.set()

    def answers(self, signed_in_at: float) -> bool:
        """Return whether the copy may answer for a session signed in at `signed_in_at`."""
        return time.monotonic() < self.trusted_until and signed_in_at > self.horizon

    def fences_of(self, keys: Iterable[str]) -> dict[str, float]:
        """Return the fence (epoch seconds, 0.0 if none newer than the horizon) of each key."""
        values = self.values
        return {k: values.get(k, 0.0) for k in keys}

    def raise_to(self, values: dict[str, float]) -> None:
        """Raise the copy's fences to `values` (epoch seconds) where they are newer."""
        if self._loaded_at:
            self._raise(values.items())

    def _distrust(self) -> None:
        """Stop answering until the next load is vouched for."""
        self.trusted_until = 0.0
        self._loaded_at = 0.0

    def _run(self) -> None:
        """Subscribe and listen until stopped; after any failure, distrust and start over."""
        while not self._stop.is_set():
            try:
                self._listen()
            except Exception:
                if not self._failing:
                    self._failing = True
                    logger.warning(
                        "revocation: fence copy lost Redis, checking fences in the cache",
                        exc_info=True,
                    )
            self._distrust()
            self._subscribed = False
            self._stop.wait(RETRY_AFTER)

    def _listen(self) -> None:
        """Subscribe, load on each confirmation, apply messages; beat every HEARTBEAT."""
        client = monotonic.redis_client()
        pubsub = client.pubsub()
        try:
            pubsub.subscribe(monotonic.channel(CHANNEL))
            next_beat = 0.0
            while not self._stop.is_set():
                message = pubsub.get_message(timeout=HEARTBEAT)
                if message is not None:
                    self._handle(message, client)
                now = time.monotonic()
                if now >= next_beat:
                    next_beat = now + HEARTBEAT
                    self._heartbeat(pubsub, client, now)
        finally:
            pubsub.close()

    def _handle(self, message: dict[str, Any], client: Any) -> None:
        """Act on one message: a (re)subscription, a published fence or a PING's answer."""
        kind, data = message["type"], message["data"]
        if kind == "subscribe":
            # The subscription is live (again): whatever happened in between is unknown.
            self._subscribed = True
            self._distrust()
            self._load(client)
        elif kind == "message" and self._loaded_at:
            self._apply(data.decode())
        elif kind == "pong" and data:
            # Everything published before this PING has been applied by now.
            sent = float(data)
            if self._loaded_at and sent > self._loaded_at:
                self.trusted_until = sent + GRACE
                if self._failing:
                    self._failing = False
                    logger.info("revocation: fence copy back, checking fences locally")

    def _heartbeat(self, pubsub: Any, client: Any, now: float) -> None:
        """Check the flush marker, prune or reload when due, and PING with the send time."""
        if not self._subscribed:
            return
        if not self._loaded_at:
            # Over its bound at the last load: try again when a pruning would be due.
            if now - self._pruned_at >= PRUNE_EVERY:
                self._load(client)
            return
        if not client.expire(self._marker, _MARKER_TTL):
            # The cache was flushed since the load.
            self._distrust()
            self._load(client)
            return
        if now - self._pruned_at >= PRUNE_EVERY:
            self._prune()
        pubsub.ping(repr(time.monotonic()))

    def _load(self, client: Any) -> None:
        """Replace the copy with every fence newer than the horizon read from the database."""
        started = self._pruned_at = time.monotonic()
        horizon = time.time() - settings.SESSION_COOKIE_AGE
        recent = RevocationFence.objects.filter(not_before__gt=_datetime(horizon))
        try:
            if recent.count() > self.max_keys:
                logger.warning(
                    "revocation: more than %d recent fences, checking fences in the cache",
                    self.max_keys,
                )
                return  # _loaded_at stays 0: no PING, no trust; retried at the next prune
            rows = recent.values_list("key", "not_before").iterator(chunk_size=10_000)
            values = {key: _seconds(at) for key, at in rows}
        finally:
            connection.close()  # this thread's connection: not kept between loads
        client.set(self._marker, 1, ex=_MARKER_TTL)
        with self._writing:
            self.values, self.horizon = values, horizon
        self._loaded_at = started
        self.loads += 1

    def _apply(self, payload: str) -> None:
        """Raise the fences named in a published message ("key value" lines, microseconds)."""
        lines = (line.rpartition(" ") for line in payload.splitlines())
        self._raise((key, int(micros) / 1_000_000) for key, _, micros in lines)

    def _raise(self, values: Iterable[tuple[str, float]]) -> None:
        """Raise fences to `values` where newer; stop answering past the bound."""
        with self._writing:
            current = self.values
            for key, at in values:
                if at > self.horizon and at > current.get(key, 0.0):
                    current[key] = at
        if len(current) > self.max_keys:
            self._distrust()
            self.values = {}
            logger.warning(
                "revocation: more than %d recent fences, checking fences in the cache",
                self.max_keys,
            )

    def _prune(self) -> None:
        """Drop the fences that fell behind the horizon."""
        self._pruned_at = time.monotonic()
        horizon = time.time() - settings.SESSION_COOKIE_AGE
        with self._writing:
            # Raise the horizon first: a check in between then leaves the old fences unused.
            self.horizon = horizon
            self.values = {k: v for k, v in self.values.items() if v > horizon}


def _datetime(seconds: float) -> datetime:
    """Return epoch `seconds` as an aware datetime."""
    return _EPOCH + timedelta(seconds=seconds)


def _seconds(at: datetime) -> float:
    """Return `at` as epoch seconds, the same float as `fences` computes from microseconds."""
    aware = at if at.tzinfo is not None else at.astimezone()
    return ((aware - _EPOCH) // _MICROSECOND) / 1_000_000


_lock = threading.Lock()
_copy: FenceCopy | None = None
_decided = False  # whether this process decided to keep a copy (in `_copy`) or not


def current() -> FenceCopy | None:
    """Return this process's fence copy if it keeps one, starting it on first use."""
    if _decided:
        return _copy
    return _start()


def running() -> FenceCopy | None:
    """Return this process's fence copy if one is running; never start one."""
    return _copy


def _start() -> FenceCopy | None:
    """Decide whether this process keeps a copy, and start it if so."""
    global _copy, _decided
    with _lock:
        if not _decided:
            max_keys = app_settings.FENCE_COPY_MAX_KEYS
            if max_keys and monotonic.redis_client() is not None:
                _copy = FenceCopy(max_keys)
                _copy.start()
            _decided = True
        return _copy


def reset() -> None:
    """Stop this process's copy; the next check decides again whether to keep one."""
    global _copy, _decided
    with _lock:
        if _copy is not None:
            _copy.stop()
        _copy, _decided = None, False


def _forget_after_fork() -> None:
    """In a forked child: the parent's thread did not come along, decide again."""
    global _copy, _decided, _lock
    _lock = threading.Lock()
    _copy, _decided = None, False


def _on_setting_changed(setting: str, **kwargs: object) -> None:
    """Decide again after a test changes the caches or the copy's settings."""
    if setting in ("CACHES", "REVOCATION_FENCE_COPY_MAX_KEYS", "SESSION_COOKIE_AGE"):
        reset()


os.register_at_fork(after_in_child=_forget_after_fork)
setting_changed.connect(_on_setting_changed)
