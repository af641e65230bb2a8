"""Settings shared by every environment; all deployment knobs come from the environment.

Importing them has no side effects: the local folders they name (LOCAL_FOLDERS)
are created when Django starts, by workers.apps. The revocation app reads its own
REVOCATION_* settings from the environment itself (revocation/app_settings.py, where
their defaults live); set one here only where this project differs from the app.
"""

from __future__ import annotations

from pathlib import Path

import django
import environ

from revocation.app_settings import AppSettings

BASE_DIR = Path(__file__).resolve().parent.parent.parent

# The one environment reader; .env first, so that every value below can come from it.
env = environ.Env()
env.read_env(BASE_DIR / ".env")

# Local state of the embedded default (SQLite file, broker folder, file cache).
VAR_DIR = Path(env.str("REVOCATION_VAR_DIR", default=str(BASE_DIR / "var")))

SECRET_KEY = env.str("SECRET_KEY")
SECRET_KEY_FALLBACKS = env.list("SECRET_KEY_FALLBACKS", default=[])
DEBUG = env.bool("DEBUG", default=False)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    # Before django.contrib.sessions: its batched clearsessions command shadows Django's.
    "revocation",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_celery_beat",
    # Serves the API docs page (/api/docs) from its own static files, not a CDN.
    "ninja",
    "workers",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Before SessionMiddleware: sees its `Vary: Cookie` (see config.middleware).
    "config.middleware.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # The language of each page and API error: the browser's Accept-Language (or the
    # django_language cookie), else LANGUAGE_CODE.
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # After AuthenticationMiddleware: links sessions to users (see revocation.middleware).
    "revocation.middleware.RevocationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Every script and style is a file of ours: no inline code, no third-party origin.
# (The admin and the API docs page at /api/docs comply as shipped.)
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "config" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and beat share the file: wait for locks instead of failing, and take
    # the write lock up front so two writers never deadlock upgrading a read lock
    # (transaction_mode is Django 5.1+; the service runs 5.2, the app supports 4.2).
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 30
    if django.VERSION >= (5, 1):
        DATABASES["default"]["OPTIONS"]["transaction_mode"] = "IMMEDIATE"
        # Write-ahead log: readers never wait for the writer, and a commit is one
        # append instead of a journal's several fsyncs (a login with the app: +30 %
        # over bare Django with the rollback journal, +2 % with WAL; bench/login.py).
        # synchronous=NORMAL keeps every commit through a process crash; only a power
        # loss can take the last ones back.
        DATABASES["default"]["OPTIONS"]["init_command"] = (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
        )
elif DATABASES["default"]["ENGINE"] == "django.db.backends.mysql":
    # MariaDB/MySQL through PyMySQL (pure Python): mysqlclient needs a C compiler and
    # the client headers, which a plain pip install cannot count on.
    import pymysql  # type: ignore[import-untyped]  # no stubs in the lock file

    pymysql.install_as_MySQLdb()
    # 4-byte UTF-8 (emoji in user agents); MariaDB's "utf8" is the 3-byte utf8mb3.
    # The isolation level stays Django's READ COMMITTED (not InnoDB's REPEATABLE READ):
    # the code assumes PostgreSQL's semantics, where a locking read takes no gap locks.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"charset": "utf8mb4"})
    DATABASES["default"].setdefault("TEST", {}).update({"CHARSET": "utf8mb4"})
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="")
CACHE_KEY_PREFIX = env.str("CACHE_KEY_PREFIX", default="")
# One cache shared by web and worker processes: cached_db/cache sessions and
# the revocation fence must be seen identically everywhere.
if REDIS_URL:
    CACHES = {
        "default": {
            # Django's RedisCache, reusing its redis-py client (see revocation/cache.py).
            "BACKEND": "revocation.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": CACHE_KEY_PREFIX,
            "OPTIONS": {"socket_timeout": 5, "socket_connect_timeout": 5},
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
            # Django culls a third of the entries at random past 300 (the default):
            # with the cache engine that logs random users out, and drops fences.
            "OPTIONS": {"MAX_ENTRIES": 1_000_000},
            "KEY_PREFIX": CACHE_KEY_PREFIX,
        }
    }

_SESSION_ENGINES = {
    "db": "django.contrib.sessions.backends.db",
    "cached_db": "django.contrib.sessions.backends.cached_db",
    "cache": "django.contrib.sessions.backends.cache",
    "signed_cookies": "django.contrib.sessions.backends.signed_cookies",
}
_engine = env.str("SESSION_ENGINE", default="db")
SESSION_ENGINE = _SESSION_ENGINES.get(_engine, _engine)

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/sessions/"
LOGOUT_REDIRECT_URL = "login"

# Optional GeoIP (Django's setting): a folder with GeoLite2-City.mmdb (or -Country), or
# one such file. Sessions then record the country and city of their IP (needs geoip2).
if env.str("GEOIP_PATH", default=""):
    GEOIP_PATH = env.str("GEOIP_PATH")

LANGUAGE_CODE = "en-us"
# The languages the app's catalogues (revocation/locale) and this project's pages
# (config/locale) are translated into, each named in its own language.
LANGUAGES = [("en", "English"), ("de", "Deutsch"), ("fr", "Français"), ("es", "Español")]
LOCALE_PATHS = [BASE_DIR / "config" / "locale"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Folders the embedded default writes into, created at startup by workers.apps (not here).
LOCAL_FOLDERS = [VAR_DIR, STATIC_ROOT]

# --- Celery: at-least-once delivery on Redis or RabbitMQ (DESIGN §5) -------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
BROKER_DIR = Path(env.str("REVOCATION_BROKER_DIR", default=str(VAR_DIR / "broker")))
_broker_scheme = CELERY_BROKER_URL.split("://", 1)[0]
# A web process whose broker is down gives up publishing after a few quick connection
# attempts (every kombu transport reads these), each bounded by the transport's timeouts.
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {
    "max_retries": 3,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 2,
}
if _broker_scheme == "filesystem":
    # Producer and consumer must share one absolute folder (kombu does not create it).
    LOCAL_FOLDERS += [BROKER_DIR / "processed", BROKER_DIR / "control"]
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR),
        "data_folder_out": str(BROKER_DIR),
        "processed_folder": str(BROKER_DIR / "processed"),
        # Broadcast (control) messages; the default is a folder in the working directory.
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
        # The folder is polled; 1 s (the default) adds a second to every hand-off.
        "polling_interval": 0.2,
    }
elif _broker_scheme in ("redis", "rediss"):
    CELERY_BROKER_TRANSPORT_OPTIONS |= {
        # Above the longest task, or Redis redelivers it while it still runs. The app's
        # setting, read from the environment (Django's settings are not built yet).
        "visibility_timeout": AppSettings(project_settings=None).VISIBILITY_TIMEOUT,
        # A black-holed broker must not block .delay() in a web handler forever.
        "socket_timeout": 5,
        "socket_connect_timeout": 5,
    }
    # kombu's Redis transport, fixed: with it, a worker running a task when Redis went
    # away exited ("'NoneType' object has no attribute 'hostname'") instead of
    # reconnecting. Cause and fix in workers/broker.py.
    CELERY_BROKER_TRANSPORT = "workers.broker:RedisTransport"
elif _broker_scheme in ("amqp", "amqps", "pyamqp"):
    # RabbitMQ has no visibility timeout: an unacknowledged task comes back when the
    # connection of the worker holding it closes, however long the task runs.
    CELERY_BROKER_TRANSPORT_OPTIONS |= {
        # A publish returns once RabbitMQ has the message (as Redis answers the LPUSH),
        # not when it is written to a socket that may be about to drop.
        "confirm_publish": True,
        # Connecting and the handshake are bounded by broker_connection_timeout (4 s);
        # these bound the waits after it (the confirm, opening a channel), so a
        # black-holed broker cannot block .delay() in a web handler forever.
        "read_timeout": 5,
        "write_timeout": 5,
    }
    # A worker drops a silent connection (a dead route sends no FIN) after two missed
    # heartbeats: 60 s, against 120 s with RabbitMQ's 60 s. Publishers send none.
    CELERY_BROKER_HEARTBEAT = 30
# Reconnect for as long as the broker is down: the default gives up after 100 tries
# (about 46 minutes at 2, 4, ... 30 s apart) and the worker exits, needing a restart.
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_PUBLISH_RETRY = True
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 1,
}
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="revocation")
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Beat keeps a local state file even with the database scheduler; keep it out of the tree.
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
}
if CELERY_BROKER_URL.startswith("filesystem://"):
    # The filesystem transport has no host: kombu warns "No hostname was supplied" on
    # every publish, which would drown the CLI's output.
    LOGGING["loggers"] = {"kombu.connection": {"level": "ERROR"}}
