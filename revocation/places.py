"""Where an IP address is: country and city from a MaxMind database, when one is configured.

Optional: with Django's `GEOIP_PATH` set (a folder holding GeoLite2-City.mmdb or
GeoLite2-Country.mmdb, or the path of one such file) and the `geoip2` package
installed, `locate()` looks the address up through Django's GeoIP2 (which needs
no GDAL). Without either it finds nothing, and a database that cannot be opened
or read is logged once, not on every sign-in.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
from typing import Any, NamedTuple

from django.conf import settings
from django.utils.translation import gettext

logger = logging.getLogger("revocation")

COUNTRY_MAX_LENGTH = 2
CITY_MAX_LENGTH = 128


class Place(NamedTuple):
    """An ISO 3166 country code and a city name; "" where unknown."""

    country: str = ""
    city: str = ""

    def __str__(self) -> str:
        """Return e.g. "Berlin, DE", or "DE" alone, or ""."""
        if self.city and self.country:
            return gettext("%(city)s, %(country)s") % {"city": self.city, "country": self.country}
        return self.city or self.country


NOWHERE = Place()


class _Database:
    """One opened database (Django's GeoIP2), and whether it is a city database."""

    def __init__(self, geoip: Any, errors: tuple[type[Exception], ...]) -> None:
        self.geoip = geoip
        # Address-not-found and its kin: an answer ("not in the database"), not a fault.
        self.not_found = errors
        self.has_city: bool | None = None
        self.failed = False


# The open database and what it was opened from (path settings and file times), so a
# database replaced on disk (a monthly GeoLite2 update) is opened again.
_opened: tuple[tuple[Any, ...], _Database | None] | None = None
_lock = threading.Lock()


def enabled() -> bool:
    """Return whether GEOIP_PATH is set (the feature is asked for)."""
    return bool(getattr(settings, "GEOIP_PATH", None))


def locate(ip: str | None) -> Place:
    """Return where `ip` is, or NOWHERE (no database, an unknown or private address)."""
    if not ip or not enabled():
        return NOWHERE
    database = _database()
    if database is None or database.failed:
        return NOWHERE
    try:
        return _lookup(database, ip)
    except database.not_found:
        return NOWHERE
    except Exception:
        # A damaged file fails at a lookup, not at opening: say so once, then stop asking.
        database.failed = True
        logger.exception("revocation: GeoIP lookup failed; no place is recorded until restart")
        return NOWHERE


def _lookup(database: _Database, ip: str) -> Place:
    """Return the place of `ip` from the city database, or the country one."""
    geoip = database.geoip
    if database.has_city is not False:
        try:
            found = geoip.city(ip)
        except database.not_found:
            raise
        except Exception:
            if database.has_city:
                raise
            database.has_city = False  # a country database: Django refuses city()
        else:
            database.has_city = True
            return _place(found.get("country_code"), found.get("city"))
    found = geoip.country(ip)
    return _place(found.get("country_code"), None)


def _place(country: Any, city: Any) -> Place:
    """Return a Place that fits the columns."""
    return Place(str(country or "")[:COUNTRY_MAX_LENGTH].upper(), str(city or "")[:CITY_MAX_LENGTH])


def _database() -> _Database | None:
    """Return the open database for the current settings, opening it if they changed."""
    global _opened
    key = _source()
    opened = _opened
    if opened is not None and opened[0] == key:
        return opened[1]
    with _lock:
        if _opened is None or _opened[0] != key:
            _opened = (key, _open())
        return _opened[1]


def _source() -> tuple[Any, ...]:
    """Return what the database is opened from: the settings, and when each candidate changed.

    Three stat() calls per lookup, and lookups are as rare as link writes (sign-ins
    and throttled touches): a database replaced in place or by rename is seen.
    """
    path = str(settings.GEOIP_PATH)
    city = getattr(settings, "GEOIP_CITY", "GeoLite2-City.mmdb")
    country = getattr(settings, "GEOIP_COUNTRY", "GeoLite2-Country.mmdb")
    changed: list[tuple[int, int, int] | None] = []
    for candidate in (path, os.path.join(path, city), os.path.join(path, country)):
        try:
            found = os.stat(candidate)
        except (OSError, TypeError, ValueError):
            changed.append(None)
        else:
            # The time alone can miss a quick rewrite (coarse file-system clocks).
            changed.append((found.st_ino, found.st_size, found.st_mtime_ns))
    return (path, city, country, *changed)


def _open() -> _Database | None:
    """Open the database of GEOIP_PATH; log once and return None if that cannot be done."""
    try:
        module = importlib.import_module("django.contrib.gis.geoip2")
        errors = importlib.import_module("geoip2.errors")
    except Exception:  # ImportError, or a Django whose geoip2 module wants GDAL
        logger.warning(
            "revocation: GEOIP_PATH is set but the geoip2 package is not installed "
            "(pip install geoip2): no place is recorded"
        )
        return None
    try:
        # Named, not read by GeoIP2 itself: Django 4.2 reads GEOIP_PATH, GEOIP_CITY and
        # GEOIP_COUNTRY once, at import, so a changed setting would go unseen.
        geoip = module.GeoIP2(
            settings.GEOIP_PATH,
            city=getattr(settings, "GEOIP_CITY", "GeoLite2-City.mmdb"),
            country=getattr(settings, "GEOIP_COUNTRY", "GeoLite2-Country.mmdb"),
        )
    except Exception:
        logger.exception(
            "revocation: cannot open the GeoIP database at GEOIP_PATH=%r: no place is recorded",
            str(settings.GEOIP_PATH),
        )
        return None
    return _Database(geoip, (errors.AddressNotFoundError, ValueError))


def status() -> str:
    """Return why no place can be found ("" if a database is open or none is asked for)."""
    if not enabled():
        return ""
    try:
        importlib.import_module("django.contrib.gis.geoip2").GeoIP2  # noqa: B018
    except Exception:
        return "the geoip2 package is not installed"
    if not os.path.exists(settings.GEOIP_PATH):
        return f"{str(settings.GEOIP_PATH)!r} does not exist"
    return ""
