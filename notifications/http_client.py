"""The one HTTP client for URLs a company configured (outbound webhooks, Slack).

A customer's URL is untrusted input that makes our servers open a connection, so every
request here:

* accepts only ``http``/``https`` URLs without credentials in them;
* resolves the host itself and refuses it if ANY of its addresses is private, loopback,
  link-local, multicast, reserved, unspecified or otherwise not globally routable (IPv4 and
  IPv6, IPv4-mapped IPv6 unwrapped first), unless ``settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES``
  (tests and self-hosted installs that post to their own network);
* then connects to the address it checked, not to the name: a second DNS answer (DNS
  rebinding) never gets a say. TLS still verifies the certificate against the host name;
* has a connect timeout, a read timeout per socket operation, and a total deadline for the
  body (a server dribbling bytes cannot hold a worker);
* reads at most ``WEBHOOK_RESPONSE_MAX_BYTES`` of the response body and drops the rest;
* follows no redirect: a 3xx is returned as it is and counts as a failure to the callers.

``url_check(url)`` runs the same checks without sending (form validation);
``post_json(url, body=..., headers=...)`` sends and never raises for a network problem:
the outcome (status or error, latency, the start of the body) is in the returned
``HttpResult``.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import certifi
import urllib3
from django.conf import settings
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.exceptions import NewConnectionError
from urllib3.exceptions import TimeoutError as Urllib3Timeout

SCHEMES = {"http": 80, "https": 443}
CHUNK = 8192
USER_AGENT = "nps_saas-webhooks/1"

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeURL(ValueError):
    """The URL must not be requested: wrong scheme, no host, a refused or unknown address."""


@dataclass(frozen=True)
class Target:
    scheme: str
    host: str  # the name, for the Host header and TLS
    port: int
    path: str  # path and query
    address: str  # the checked IP address we connect to


@dataclass(frozen=True)
class HttpResult:
    status: int | None  # None: no HTTP answer (see error)
    error: str  # empty when an HTTP answer came back
    body: bytes  # at most WEBHOOK_RESPONSE_MAX_BYTES
    latency_ms: int
    truncated: bool = False

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def timed_out(self) -> bool:
        return self.status is None and self.error.startswith("timeout")


def address_refused(address: IPAddress) -> bool:
    """Whether an address is off limits (not a public unicast address)."""
    if isinstance(address, ipaddress.IPv6Address):
        mapped = address.ipv4_mapped or address.sixtofour
        if mapped is not None:
            return address_refused(mapped)
    return (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def _getaddrinfo(host: str, port: int) -> list[str]:
    """The addresses of ``host`` (a seam: tests stand in a resolver for names)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def _resolve(host: str, port: int) -> list[IPAddress]:
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return [literal]
    try:
        found = _getaddrinfo(host, port)
    except (socket.gaierror, UnicodeError) as err:
        raise UnsafeURL(f"the host {host} cannot be resolved") from err
    # Scoped IPv6 addresses carry "%<interface>": link-local anyway, refused below.
    addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in found]
    if not addresses:
        raise UnsafeURL(f"the host {host} has no address")
    return addresses


def url_target(url: str) -> Target:
    """Parse, resolve and check ``url``; raises ``UnsafeURL`` with the reason."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as err:
        raise UnsafeURL("not a valid URL") from err
    scheme = parts.scheme.lower()
    if scheme not in SCHEMES:
        raise UnsafeURL("only http and https URLs are allowed")
    if parts.username or parts.password:
        raise UnsafeURL("credentials in the URL are not allowed")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UnsafeURL("the URL has no host")
    port = port or SCHEMES[scheme]
    addresses = _resolve(host, port)
    if not settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES:
        refused = [a for a in addresses if address_refused(a)]
        if refused:
            raise UnsafeURL(f"{host} is a private or reserved address ({refused[0]})")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return Target(scheme=scheme, host=host, port=port, path=path, address=str(addresses[0]))


def url_check(url: str) -> None:
    """Raise ``UnsafeURL`` if ``url`` would be refused (for forms: the reason is the message)."""
    url_target(url)


def _pool(target: Target) -> urllib3.HTTPConnectionPool:
    timeout = urllib3.Timeout(
        connect=settings.WEBHOOK_CONNECT_TIMEOUT, read=settings.WEBHOOK_READ_TIMEOUT
    )
    if target.scheme == "https":
        return urllib3.HTTPSConnectionPool(
            target.address,
            target.port,
            timeout=timeout,
            retries=False,
            maxsize=1,
            cert_reqs="CERT_REQUIRED",
            ca_certs=certifi.where(),
            server_hostname=target.host,
            assert_hostname=target.host,
        )
    return urllib3.HTTPConnectionPool(target.address, target.port, timeout=timeout, retries=False)


def _host_header(target: Target) -> str:
    host = f"[{target.host}]" if ":" in target.host else target.host
    return host if target.port == SCHEMES[target.scheme] else f"{host}:{target.port}"


def post_json(url: str, *, body: bytes, headers: dict[str, str] | None = None) -> HttpResult:
    """POST ``body`` (JSON) to ``url`` under the rules of the module docstring."""
    started = time.monotonic()

    def elapsed() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        target = url_target(url)
    except UnsafeURL as err:
        return HttpResult(status=None, error=f"refused: {err}", body=b"", latency_ms=elapsed())
    request_headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **(headers or {}),
        "Host": _host_header(target),
    }
    cap = settings.WEBHOOK_RESPONSE_MAX_BYTES
    deadline = started + settings.WEBHOOK_TOTAL_TIMEOUT
    pool = _pool(target)
    try:
        response = pool.urlopen(
            "POST",
            target.path,
            body=body,
            headers=request_headers,
            redirect=False,
            retries=False,
            preload_content=False,
            assert_same_host=False,
        )
        try:
            data = bytearray()
            truncated = False
            while True:
                if time.monotonic() > deadline:
                    return HttpResult(
                        status=None,
                        error="timeout: the response took too long",
                        body=bytes(data[:cap]),
                        latency_ms=elapsed(),
                    )
                chunk = response.read1(CHUNK)
                if not chunk:
                    break
                data += chunk
                if len(data) > cap:
                    truncated = True
                    break
        finally:
            # Never drain the rest into the pool: close the connection with it.
            response.release_conn()
            response.close()
        return HttpResult(
            status=response.status,
            error="",
            body=bytes(data[:cap]),
            latency_ms=elapsed(),
            truncated=truncated,
        )
    except NewConnectionError as err:  # a subclass of the timeout error in urllib3 2
        return HttpResult(
            status=None,
            error=f"connection failed: {err}"[:500],
            body=b"",
            latency_ms=elapsed(),
        )
    except Urllib3Timeout:
        return HttpResult(status=None, error="timeout", body=b"", latency_ms=elapsed())
    except (Urllib3Error, OSError) as err:
        return HttpResult(
            status=None,
            error=f"connection failed: {type(err).__name__}: {err}"[:500],
            body=b"",
            latency_ms=elapsed(),
        )
    finally:
        pool.close()
