"""The outbox publishes through the registered task: what a host project's eager Celery needs."""

from __future__ import annotations

from typing import Any

import pytest
from celery import current_app
from django.test import Client

from revocation import services
from revocation.models import RevocationRequest
from tests.support import assert_sessions_gone, session_key


@pytest.mark.django_db(transaction=True)
def test_with_eager_celery_a_revocation_is_carried_out_at_once(
    make_user: Any, monkeypatch: Any
) -> None:
    # A host project's test settings often run tasks eagerly; a bare send_task() ignored
    # that, and its revocations stayed pending forever.
    monkeypatch.setitem(current_app.conf, "task_always_eager", True)
    user = make_user()
    client = Client()
    client.force_login(user)
    key = session_key(client)

    revocation = services.revoke_user_sessions(user, reason="eager")

    revocation.refresh_from_db()
    assert revocation.state == RevocationRequest.State.DONE
    assert revocation.sessions_revoked == 1
    assert_sessions_gone([key])
