"""Alerts: a log line, and a JSON POST to the configured webhook.

The webhook URL is checked when the settings are parsed (:func:`check_webhook_url`: http or https,
a host, no link-local or cloud-metadata address) and again, resolved, before every request
(:func:`resolve_webhook`): every address the host resolves to must be allowed, and the connection
goes to the checked address itself (the name is kept for the Host header and TLS), so a DNS answer
that changes between the check and the connection cannot reach the metadata service. Redirects are
not followed. Loopback is refused too unless ``monitor.webhook_allow_loopback`` says otherwise: a
webhook that points at the serving host itself reaches whatever listens there unauthenticated.
Private networks (10/8, 192.168/16, …) are allowed: that is where a team's alert relay lives.

Sending never raises into the recorder: a refused or failed delivery is a log line.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import logging
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger("visionloop.monitor")

#: Host names of cloud metadata services (the address ones are covered by the address rules).
METADATA_HOSTS = frozenset(
    {"metadata", "metadata.google.internal", "metadata.goog", "instance-data", "instance-data.ec2.internal"}
)
#: Metadata addresses outside link-local: AWS's IPv6 endpoint, Alibaba Cloud, Oracle Cloud's IPv4 one.
_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("fd00:ec2::254", "100.100.100.200", "192.0.0.192")
)
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class WebhookRefused(ValueError):
    """The webhook URL or one of its addresses is not allowed (the message says why)."""


def _address_problem(addr: _Address, allow_loopback: bool) -> str | None:
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    if addr in _METADATA_ADDRESSES:
        return "a cloud metadata address"
    if addr.is_link_local:
        return "link-local (169.254.0.0/16, fe80::/10: cloud metadata lives there)"
    if addr.is_loopback and not allow_loopback:
        return "loopback (set monitor.webhook_allow_loopback = true to allow it)"
    if addr.is_unspecified or addr.is_multicast or addr.is_reserved:
        return "not a unicast address"
    return None


def check_webhook_url(url: str, *, allow_loopback: bool = False) -> str:
    """The URL, stripped, when it may be used as a webhook; :class:`WebhookRefused` says why not.

    Checks the scheme, the host name and a literal address (no DNS here: settings parse offline)."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise WebhookRefused(f"webhook URL {url!r} must start with http:// or https://")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise WebhookRefused(f"webhook URL {url!r} has no host")
    try:
        _ = parts.port
    except ValueError:
        raise WebhookRefused(f"webhook URL {url!r} has an invalid port") from None
    if host in METADATA_HOSTS or host.endswith(".metadata.google.internal"):
        raise WebhookRefused(f"webhook host {host!r} is a cloud metadata service")
    if host == "localhost" or host.endswith(".localhost"):
        if not allow_loopback:
            raise WebhookRefused(
                f"webhook host {host!r} is loopback (set monitor.webhook_allow_loopback = true to allow it)"
            )
        return url
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return url  # a name: its addresses are checked when it is resolved, before each request
    problem = _address_problem(addr, allow_loopback)
    if problem:
        raise WebhookRefused(f"webhook address {host} is {problem}")
    return url


Resolver = Callable[[str, int], list[str]]


def _resolve(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # the name, for the Host header and TLS
    address: str  # the checked address the connection goes to
    port: int
    path: str


def resolve_webhook(url: str, *, allow_loopback: bool = False, resolver: Resolver = _resolve) -> Target:
    """Check the URL, resolve its host and check every address; the address to connect to."""
    check_webhook_url(url, allow_loopback=allow_loopback)
    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = resolver(host, port)
    except OSError as exc:
        raise WebhookRefused(f"webhook host {host!r} does not resolve ({exc})") from None
    if not addresses:
        raise WebhookRefused(f"webhook host {host!r} has no address")
    for a in addresses:
        problem = _address_problem(ipaddress.ip_address(a.split("%")[0]), allow_loopback)
        if problem:
            raise WebhookRefused(f"webhook host {host!r} resolves to {a}, which is {problem}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(parts.scheme, host, addresses[0], port, path)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to a fixed address, with certificate and SNI checks against the host name."""

    def __init__(self, host: str, address: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


def post_json(target: Target, payload: dict[str, Any], timeout: float) -> int:
    """POST ``payload`` as JSON to a resolved target; the HTTP status (redirects are not followed)."""
    body = json.dumps(payload, default=str).encode()
    conn: http.client.HTTPConnection
    if target.scheme == "https":
        conn = _PinnedHTTPS(target.host, target.address, target.port, timeout)
    else:
        conn = http.client.HTTPConnection(target.address, target.port, timeout=timeout)
    try:
        default_port = 443 if target.scheme == "https" else 80
        host_header = target.host if target.port == default_port else f"{target.host}:{target.port}"
        if ":" in target.host and not target.host.startswith("["):
            host_header = f"[{target.host}]" + ("" if target.port == default_port else f":{target.port}")
        conn.request(
            "POST",
            target.path,
            body=body,
            headers={"Host": host_header, "Content-Type": "application/json", "User-Agent": "visionloop"},
        )
        response = conn.getresponse()
        response.read()
        return int(response.status)
    finally:
        conn.close()


class Alerter:
    """Logs every alert and posts it to the webhook when one is configured; never raises."""

    def __init__(
        self,
        webhook_url: str = "",
        *,
        allow_loopback: bool = False,
        timeout_s: float = 3.0,
        resolver: Resolver = _resolve,
    ) -> None:
        self.webhook_url = webhook_url
        self.allow_loopback = allow_loopback
        self.timeout_s = timeout_s
        self.resolver = resolver
        self.sent = 0
        self.failed = 0

    def send(self, alert: dict[str, Any]) -> bool:
        """Log ``alert`` and deliver it; True when the webhook answered 2xx (False without one)."""
        log.warning("monitoring alert: %s", json.dumps(alert, default=str, sort_keys=True))
        if not self.webhook_url:
            return False
        try:
            target = resolve_webhook(
                self.webhook_url, allow_loopback=self.allow_loopback, resolver=self.resolver
            )
            status = post_json(target, alert, self.timeout_s)
        except (WebhookRefused, OSError, http.client.HTTPException) as exc:
            self.failed += 1
            log.error("the alert webhook was not reached: %s", exc)
            return False
        if 200 <= status < 300:
            self.sent += 1
            return True
        self.failed += 1
        log.error("the alert webhook answered HTTP %s", status)
        return False
