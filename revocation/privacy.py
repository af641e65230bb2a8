"""What a session's link records about its client, as far as the privacy settings allow.

REVOCATION_RECORD_IP: `full`, `truncated` (the network: IPv4 /24, IPv6 /48) or
`off`; the GeoIP place follows it, looked up from what is kept. And
REVOCATION_RECORD_USER_AGENT: `full`, `device` (only the description worked out
from it) or `off`. Everything is worked out from the request once, when the
link is written or touched, not when the sessions are listed.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from django.http import HttpRequest

from . import devices, places
from .app_settings import app_settings
from .client import client_hints, client_ip, user_agent

# The network kept of a truncated address: a household or an office, not a machine.
IPV4_PREFIX = 24
IPV6_PREFIX = 48


@dataclass(frozen=True)
class ClientRecord:
    """The columns of a UserSession row that describe the client."""

    ip: str | None = None
    user_agent: str = ""
    device: str = ""
    country: str = ""
    city: str = ""
    # Whether `device` knows the OS version; if not, a better description stored before
    # for the same browser and system is kept (a request without client hints).
    settled: bool = True
    family: str = ""


def truncate_ip(ip: str) -> str:
    """Return the network address of `ip`: its /24 (IPv4) or /48 (IPv6)."""
    address = ipaddress.ip_address(ip)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    prefix = IPV4_PREFIX if address.version == 4 else IPV6_PREFIX
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)


def recorded_ip(request: HttpRequest) -> str | None:
    """Return the client's IP as REVOCATION_RECORD_IP allows it to be kept."""
    mode = app_settings.RECORD_IP
    if mode == "off":
        return None
    ip = client_ip(request)
    return truncate_ip(ip) if ip and mode == "truncated" else ip


def client_record(request: HttpRequest) -> ClientRecord:
    """Return what the link of `request`'s session keeps about the client."""
    ip = recorded_ip(request)
    place = places.locate(ip)
    mode = app_settings.RECORD_USER_AGENT
    if mode == "off":
        return ClientRecord(ip=ip, country=place.country, city=place.city)
    agent = user_agent(request)
    device = devices.identify(agent, client_hints(request))
    stored = device.stored()
    return ClientRecord(
        ip=ip,
        user_agent=agent if mode == "full" else "",
        device=stored,
        country=place.country,
        city=place.city,
        settled=device.settled or not stored,
        family=device.family() if stored else "",
    )
