"""docker-compose.yml and Procfile describe the same runnable service (no Docker engine here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DJANGO_SERVICES = ("release", "web", "worker", "beat")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_the_service_topology(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {*DJANGO_SERVICES, "postgres", "redis", "rabbitmq"}
    assert set(compose["volumes"]) == {"pgdata", "redisdata", "rabbitmqdata"}


def test_rabbitmq_is_an_optional_profile_that_redis_stays_the_default_for(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    # Only RabbitMQ is behind a profile: a plain `docker compose up` is unchanged.
    assert {name for name, s in services.items() if "profiles" in s} == {"rabbitmq"}
    rabbitmq = services["rabbitmq"]
    assert rabbitmq["profiles"] == ["rabbitmq"]
    assert rabbitmq["image"].startswith("rabbitmq:3-management")
    assert "healthcheck" in rabbitmq
    assert "rabbitmqdata:/var/lib/rabbitmq" in rabbitmq["volumes"]
    # guest cannot log in from another container.
    assert rabbitmq["environment"]["RABBITMQ_DEFAULT_USER"] != "guest"
    base = compose["x-django"]
    # Waited for when the profile is on, ignored when it is off.
    assert base["depends_on"]["rabbitmq"] == {"condition": "service_healthy", "required": False}
    # The broker is Redis unless CELERY_BROKER_URL says otherwise (the profile's amqp:// URL).
    assert base["environment"]["CELERY_BROKER_URL"] == "${CELERY_BROKER_URL:-redis://redis:6379/0}"


def test_worker_and_beat_reuse_the_web_definition(compose: dict[str, Any]) -> None:
    services = compose["services"]
    base = compose["x-django"]
    for name in DJANGO_SERVICES:
        service = services[name]
        # The YAML merge key copied the shared definition into each service.
        assert service["image"] == base["image"]
        assert service["environment"] == base["environment"]
        assert isinstance(service["command"], str)
    assert services["worker"]["command"].startswith("celery -A config worker")
    assert "django_celery_beat.schedulers:DatabaseScheduler" in services["beat"]["command"]
    assert services["beat"]["deploy"]["replicas"] == 1
    assert services["web"]["command"].startswith("gunicorn config.wsgi")


def test_compose_environment_uses_the_contract_names(compose: dict[str, Any]) -> None:
    env = compose["x-django"]["environment"]
    for name in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL", "SECRET_KEY", "SESSION_ENGINE"):
        assert name in env
    assert env["DJANGO_SETTINGS_MODULE"] == "config.settings.production"
    assert env["DATABASE_URL"].startswith("postgres://")
    assert "@postgres:" in env["DATABASE_URL"]
    assert "redis://redis:" in env["REDIS_URL"]


def test_compose_dependencies_point_at_defined_services(compose: dict[str, Any]) -> None:
    services = compose["services"]
    allowed_conditions = {
        "service_started",
        "service_healthy",
        "service_completed_successfully",
    }
    for service in services.values():
        for dependency, spec in service.get("depends_on", {}).items():
            assert dependency in services
            assert spec["condition"] in allowed_conditions
            if spec["condition"] == "service_healthy":
                assert "healthcheck" in services[dependency]
    for name in ("web", "worker", "beat"):
        assert services[name]["depends_on"]["release"]["condition"] == (
            "service_completed_successfully"
        )


def test_procfile_has_release_web_worker_beat() -> None:
    lines = dict(
        line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line
    )
    assert set(lines) == {"release", "web", "worker", "beat"}
    assert "migrate" in lines["release"] and "setup_schedule" in lines["release"]
    assert "celery -A config worker" in lines["worker"]
    assert "DatabaseScheduler" in lines["beat"]
