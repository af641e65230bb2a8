"""kombu's Redis transport, fixed so that a worker outlives a broker outage.

The defect (kombu 5.7.0 with celery 5.7.0, no fixed release as of this writing):
on a lost broker connection celery's consumer calls `collect()` on the broken kombu
Connection, then `close()` on it (the teardown added for celery/celery#9705). For a
Redis broker, `collect()` closes the channels, then detaches the transport from its
Connection (`transport.client = None`) even if closing them failed part way. And with
Redis down it does fail part way: closing the remote-control (pidbox) or gossip
channel deletes an auto-delete fanout queue, the ConnectionError stops
`Transport.close_connection()`, and the task channel stays open, still holding the
unacknowledged message of the running task (acks_late). The `close()` that follows
closes that channel, which restores its unacked messages through a fresh Redis pool,
whose parameters kombu reads from `self.connection.client.hostname`, which is now None.
An AttributeError is not a connection error, so it escapes celery's `ignore_errors`
and the worker exits ("Unrecoverable error"). It takes a worker with room to prefetch
(concurrency 2, as in the Procfile) running a task when the broker goes away.

The channel below remembers the kombu Connection it was opened on and lends it back to
the detached transport while building connection parameters, so that late restore (or
the ack of a task finishing after the outage) reaches the right server. If Redis is back,
it succeeds. If Redis is still down, it raises a ConnectionError, which celery already
handles. Enabled by CELERY_BROKER_TRANSPORT in config/settings/base.py; drop it when a
kombu release stops building pools from a detached transport.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis


class RedisChannel(redis.Channel):  # type: ignore[misc]
    """A Redis channel that can still open a pool after its transport was detached."""

    def __init__(self, connection: Any, *args: Any, **kwargs: Any) -> None:
        # Before super().__init__(), which already opens a pool (it pings the server).
        self._opened_by = connection.client
        super().__init__(connection, *args, **kwargs)

    def _connparams(self, asynchronous: bool = False) -> dict[str, Any]:
        transport = self.connection
        if transport is None or transport.client is not None:
            return super()._connparams(asynchronous=asynchronous)  # type: ignore[misc]
        # Detached by Connection.collect(): borrow the URL, then leave it detached.
        transport.client = self._opened_by
        try:
            return super()._connparams(asynchronous=asynchronous)  # type: ignore[misc]
        finally:
            transport.client = None


class RedisTransport(redis.Transport):  # type: ignore[misc]
    """kombu's Redis transport with RedisChannel."""

    Channel = RedisChannel
