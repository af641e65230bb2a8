"""Fan-out: a large request split into key ranges, each carried out by its own task, in process."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from revocation import services
from revocation.models import RevocationPart, RevocationRequest
from revocation.services import jobs, outbox
from revocation.signals import sessions_revoked
from tests.conftest import logged_in_client
from tests.support import assert_sessions_gone, session_key

pytestmark = pytest.mark.django_db
State = RevocationRequest.State
Phase = RevocationRequest.Phase

USERS = 10
WIDTH = 3


@pytest.fixture
def fan_out(settings: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Split requests of 5 users or more into WIDTH parts, pages of 2 users (SQLite too)."""
    settings.REVOCATION_BATCH_SIZE = 2
    settings.REVOCATION_FANOUT_WIDTH = WIDTH
    settings.REVOCATION_FANOUT_MIN_USERS = 5
    # SQLite is never split in production (one writer); the parts' logic is the same.
    monkeypatch.setattr(jobs, "_single_writer", lambda: False)


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int | None]]:
    """Record the tasks published (request id, part id) instead of sending them."""
    sent: list[tuple[int, int | None]] = []

    def publish(request_id: int, part: int | None = None) -> bool:
        sent.append((request_id, part))
        return True

    monkeypatch.setattr(outbox, "publish", publish)
    return sent


@pytest.fixture
def targeted(make_user: Any) -> tuple[list[Any], list[str]]:
    """Return USERS users and the keys of their sessions (two for every third user)."""
    users = [make_user() for _ in range(USERS)]
    keys = []
    for n, user in enumerate(users):
        for _ in range(2 if n % 3 == 0 else 1):
            keys.append(session_key(logged_in_client(user)))
    return users, keys


def start(users: list[Any]) -> tuple[RevocationRequest, list[RevocationPart]]:
    """Accept a request for `users` and run its task once: the split."""
    request = services.revoke_sessions(user_ids=[u.pk for u in users])
    services.run_request(request.pk, budget_seconds=0)
    request.refresh_from_db()
    return request, list(request.parts.order_by("number"))


def part_page(request: RevocationRequest, part: RevocationPart) -> bool:
    """Run one page of `part`, as its task does with no time budget left."""
    return services.run_request(request.pk, budget_seconds=0, part=part.pk)


def run_all(request: RevocationRequest, parts: list[RevocationPart]) -> None:
    """Run the parts' pages one after another, round robin, until none has more."""
    going = list(parts)
    while going:
        going = [part for part in going if part_page(request, part)]
    request.refresh_from_db()


def within(user_id: int, part: RevocationPart) -> bool:
    """Return whether `user_id` is in the part's range (after, upto]."""
    return (not part.after or user_id > int(part.after)) and (
        not part.upto or user_id <= int(part.upto)
    )


def test_a_large_request_is_split_into_ranges_covering_every_user_once(
    fan_out: None, published: list[Any], targeted: Any, django_capture_on_commit_callbacks: Any
) -> None:
    users, _ = targeted
    with django_capture_on_commit_callbacks(execute=True):
        request, parts = start(users)

    assert (request.state, request.phase, request.users_total) == (State.RUNNING, Phase.PARTS, 10)
    assert [p.number for p in parts] == list(range(WIDTH))
    covering = [sum(within(u.pk, p) for p in parts) for u in users]
    assert covering == [1] * USERS
    assert sorted(sum(within(u.pk, p) for u in users) for p in parts) == [3, 3, 4]
    # The accepted request's own task, then one task per part once the split commits.
    assert published == [(request.pk, None), *((request.pk, p.pk) for p in parts)]
    # Nothing revoked yet: the split is the request task's only page.
    assert (request.users_done, request.sessions_revoked) == (0, 0)


def test_interleaved_part_pages_revoke_every_session_and_count_exactly(
    fan_out: None, published: list[Any], targeted: Any
) -> None:
    users, keys = targeted
    request, parts = start(users)

    run_all(request, parts)

    assert request.state == State.DONE, request.error
    assert (request.users_done, request.sessions_revoked) == (USERS, len(keys))
    assert_sessions_gone(keys)
    parts = list(request.parts.order_by("number"))
    assert all(p.done for p in parts)
    assert sum(p.users_done for p in parts) == USERS
    assert sum(p.sessions_revoked for p in parts) == len(keys)
    assert request.finished_at is not None


def test_a_part_task_delivered_twice_counts_nothing_twice(
    fan_out: None, published: list[Any], targeted: Any
) -> None:
    users, keys = targeted
    request, parts = start(users)
    first = parts[0]
    assert part_page(request, first) is True
    first.refresh_from_db()
    cursor = first.cursor

    # The same task again (a redelivery): it resumes from the committed cursor.
    assert part_page(request, first) is False
    first.refresh_from_db()
    assert first.cursor > cursor and first.done
    run_all(request, parts)
    for part in parts:
        assert part_page(request, part) is False  # every delivery after the end: nothing

    request.refresh_from_db()
    assert (request.users_done, request.sessions_revoked) == (USERS, len(keys))


def test_the_last_part_to_finish_finishes_the_request_and_signals_once(
    fan_out: None, published: list[Any], targeted: Any
) -> None:
    users, keys = targeted
    request, parts = start(users)
    signalled: list[int] = []

    def receiver(sender: Any, revocation: RevocationRequest, **kwargs: Any) -> None:
        signalled.append(kwargs["sessions_revoked"])

    sessions_revoked.connect(receiver, sender=RevocationRequest)
    try:
        run_all(request, parts[1:])
        assert request.state == State.RUNNING  # one part still to go
        run_all(request, parts[:1])
        assert request.state == State.DONE
        # Redeliveries of the request's task and of every part's find it finished.
        run_all(request, parts)
        assert services.run_request(request.pk, budget_seconds=0) is False
    finally:
        sessions_revoked.disconnect(receiver, sender=RevocationRequest)

    assert signalled == [len(keys)]


def test_the_request_task_restarts_the_parts_not_done(
    fan_out: None,
    published: list[Any],
    targeted: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    users, _ = targeted
    request, parts = start(users)
    run_all(request, parts[:1])
    published.clear()

    # Redelivered, or re-enqueued by the sweeper: it starts the parts still to do.
    with django_capture_on_commit_callbacks(execute=True):
        assert services.run_request(request.pk, budget_seconds=0) is False

    assert sorted(published) == sorted((request.pk, p.pk) for p in parts[1:])


def test_the_request_task_finishes_a_request_whose_parts_ended_without_finishing_it(
    fan_out: None, published: list[Any], targeted: Any
) -> None:
    users, _ = targeted
    request, parts = start(users)
    # As a worker killed between its last part's page and the finishing leaves it.
    RevocationPart.objects.filter(request=request).update(done=True)

    assert services.run_request(request.pk, budget_seconds=0) is False

    request.refresh_from_db()
    assert request.state == State.DONE


def test_the_sweeper_requeues_a_stalled_part_and_one_whose_publish_failed(
    fan_out: None, published: list[Any], targeted: Any
) -> None:
    users, _ = targeted
    request, (stalled, failed, live) = start(users)
    long_ago = timezone.now() - timedelta(hours=1)
    # The request itself is live: another part's page touched it just now.
    RevocationRequest.objects.filter(pk=request.pk).update(updated_at=timezone.now())
    RevocationPart.objects.filter(pk=stalled.pk).update(updated_at=long_ago)
    RevocationPart.objects.filter(pk=failed.pk).update(enqueue_failed=True)
    published.clear()

    assert services.sweep_outbox() == []

    assert sorted(published) == [(request.pk, stalled.pk), (request.pk, failed.pk)]
    stalled.refresh_from_db()
    failed.refresh_from_db()
    assert stalled.updated_at > long_ago + timedelta(minutes=59)
    assert failed.enqueue_failed is False
    # Not due again until another stall timeout passes without progress.
    published.clear()
    services.sweep_outbox()
    assert published == []


def test_fewer_users_than_parts_make_fewer_parts(
    fan_out: None, published: list[Any], make_user: Any, settings: Any
) -> None:
    settings.REVOCATION_FANOUT_MIN_USERS = 1
    user = make_user()
    key = session_key(logged_in_client(user))
    request, parts = start([user])

    assert [(p.after, p.upto) for p in parts] == [("", "")]
    run_all(request, parts)
    assert (request.state, request.users_done, request.sessions_revoked) == (State.DONE, 1, 1)
    assert_sessions_gone([key])


def test_small_requests_and_width_one_are_not_split(
    fan_out: None, published: list[Any], targeted: Any, settings: Any
) -> None:
    users, _ = targeted
    settings.REVOCATION_FANOUT_MIN_USERS = USERS + 1
    small, parts = start(users)
    assert (small.phase, parts) == (Phase.USERS, [])

    settings.REVOCATION_FANOUT_MIN_USERS = 1
    settings.REVOCATION_FANOUT_WIDTH = 1
    off, parts = start(users)
    assert (off.phase, parts) == (Phase.USERS, [])


def test_sqlite_is_never_split(settings: Any, targeted: Any) -> None:
    """One writer at a time: parallel pages would only queue for the database's lock."""
    settings.REVOCATION_FANOUT_MIN_USERS = 1
    users, _ = targeted
    request, parts = start(users)
    expected = Phase.USERS if connection.vendor == "sqlite" else Phase.PARTS
    assert request.phase == expected


def test_the_admin_shows_a_requests_parts(
    fan_out: None, published: list[Any], targeted: Any, make_user: Any
) -> None:
    from django.test import Client

    users, _ = targeted
    request, parts = start(users)
    run_all(request, parts[:1])
    client = Client()
    client.force_login(make_user(is_staff=True, is_superuser=True))

    page = client.get(f"/admin/revocation/revocationrequest/{request.pk}/change/").content.decode()

    assert "Revocation parts" in page
    assert page.count('<td class="field-number">') == WIDTH
