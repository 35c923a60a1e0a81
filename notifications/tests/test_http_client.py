"""The hardened client for company-configured URLs, against a real loopback server."""

from __future__ import annotations

import pytest

from notifications import http_client
from notifications.http_client import UnsafeURL, post_json, url_check
from notifications.tests.webhooks_fake import LoopbackReceiver, Reply

REFUSED = [
    "http://127.0.0.1/",
    "http://127.1.2.3:8080/x",
    "http://10.0.0.5/",
    "http://172.16.3.4/",
    "http://192.168.1.1/",
    "http://100.64.0.1/",  # carrier-grade NAT
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata (link-local)
    "http://0.0.0.0/",
    "http://224.0.0.1/",  # multicast
    "http://240.0.0.1/",  # reserved
    "http://255.255.255.255/",
    "http://[::1]/",
    "http://[::]/",
    "http://[fe80::1]/",
    "http://[fc00::1]/",  # unique local
    "http://[ff02::1]/",  # multicast
    "http://[::ffff:127.0.0.1]/",  # IPv4-mapped loopback
    "http://[::ffff:10.0.0.1]/",  # IPv4-mapped private
    "http://[2002:7f00:1::]/",  # 6to4 wrapping 127.0.0.1
]


@pytest.fixture(autouse=True)
def _private_off(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False


@pytest.mark.parametrize("url", REFUSED)
def test_private_and_reserved_addresses_are_refused(url):
    with pytest.raises(UnsafeURL, match="private or reserved"):
        url_check(url)


def test_public_addresses_pass():
    url_check("https://93.184.216.34/hooks")
    url_check("http://[2606:4700:4700::1111]:8443/x")


@pytest.mark.parametrize(
    "url",
    ["ftp://93.184.216.34/", "file:///etc/passwd", "gopher://93.184.216.34/", "//x", "https://"],
)
def test_other_schemes_and_hostless_urls_are_refused(url):
    with pytest.raises(UnsafeURL):
        url_check(url)


def test_credentials_in_the_url_are_refused():
    with pytest.raises(UnsafeURL, match="credentials"):
        url_check("https://user:pw@93.184.216.34/")


def test_a_name_is_refused_if_any_of_its_addresses_is_private(monkeypatch):
    monkeypatch.setattr(
        http_client, "_getaddrinfo", lambda host, port: ["93.184.216.34", "10.1.2.3"]
    )
    with pytest.raises(UnsafeURL, match=r"10\.1\.2\.3"):
        url_check("https://hooks.customer.test/x")


def test_an_unknown_name_is_refused(monkeypatch):
    def fail(host, port):
        raise http_client.socket.gaierror("no such host")

    monkeypatch.setattr(http_client, "_getaddrinfo", fail)
    with pytest.raises(UnsafeURL, match="cannot be resolved"):
        url_check("https://nowhere.customer.test/x")


def test_loopback_is_not_even_contacted_with_the_setting_off():
    with LoopbackReceiver() as receiver:
        result = post_json(receiver.url, body=b"{}")
    assert result.status is None
    assert result.error.startswith("refused:")
    assert receiver.requests == []


def test_connects_to_the_address_it_checked_not_to_a_second_lookup(settings, monkeypatch):
    """DNS rebinding: the name is resolved once, checked, and that address is dialled; the
    Host header still names the host."""
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    lookups: list[str] = []

    def resolver(host, port):
        lookups.append(host)
        return ["127.0.0.1"]

    monkeypatch.setattr(http_client, "_getaddrinfo", resolver)
    with LoopbackReceiver() as receiver:
        url = f"http://hooks.customer.test:{receiver.port}/in?x=1"
        result = post_json(url, body=b'{"a":1}', headers={"X-Test": "yes"})
    assert result.ok, result
    assert lookups == ["hooks.customer.test"]
    [request] = receiver.requests
    assert request.path == "/in?x=1"
    assert request.headers["host"] == f"hooks.customer.test:{receiver.port}"
    assert request.headers["x-test"] == "yes"
    assert request.headers["content-type"] == "application/json"
    assert request.body == b'{"a":1}'


def test_a_redirect_is_not_followed(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    with LoopbackReceiver(Reply(status=302, headers={"Location": "/elsewhere"})) as receiver:
        result = post_json(receiver.url, body=b"{}")
    assert result.status == 302
    assert not result.ok
    assert len(receiver.requests) == 1


def test_the_answer_is_read_up_to_the_cap(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    settings.WEBHOOK_RESPONSE_MAX_BYTES = 1024
    with LoopbackReceiver(Reply(body=b"x" * 2_000_000)) as receiver:
        result = post_json(receiver.url, body=b"{}")
    assert result.status == 200
    assert result.truncated
    assert len(result.body) == 1024


def test_a_slow_answer_times_out(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    settings.WEBHOOK_READ_TIMEOUT = 0.3
    with LoopbackReceiver(Reply(delay=1.0)) as receiver:
        result = post_json(receiver.url, body=b"{}")
    assert result.status is None
    assert result.timed_out
    assert result.latency_ms < 1000


def test_a_dribbling_answer_hits_the_total_deadline(settings):
    """Each byte arrives within the read timeout; the total deadline still ends it."""
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    settings.WEBHOOK_READ_TIMEOUT = 1.0
    settings.WEBHOOK_TOTAL_TIMEOUT = 0.5
    with LoopbackReceiver(Reply(body=b"y" * 100, dribble=0.05)) as receiver:
        result = post_json(receiver.url, body=b"{}")
    assert result.timed_out, result
    assert result.latency_ms < 2000


def test_nothing_listening_is_a_connection_error(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    with LoopbackReceiver() as receiver:
        url = receiver.url
    result = post_json(url, body=b"{}")
    assert result.status is None
    assert result.error.startswith("connection failed")
