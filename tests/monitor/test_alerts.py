"""Webhook URLs: what is refused at parse time and after resolution; a real local receiver gets the
alert JSON; a failing webhook never raises."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest

from visionloop.config import load_settings
from visionloop.errors import ConfigError
from visionloop.monitor.alerts import Alerter, WebhookRefused, check_webhook_url, resolve_webhook


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://alerts.example.com/hook", "must start with http:// or https://"),
        ("file:///etc/passwd", "must start with http:// or https://"),
        ("alerts.example.com/hook", "must start with http:// or https://"),
        ("http:///nohost", "has no host"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://169.254.10.1/", "link-local"),
        ("http://[fe80::1]/hook", "link-local"),
        ("http://[::ffff:169.254.169.254]/", "link-local"),
        ("http://[fd00:ec2::254]/", "cloud metadata address"),
        ("http://100.100.100.200/", "cloud metadata address"),
        ("http://metadata.google.internal/computeMetadata/v1/", "cloud metadata service"),
        ("http://METADATA.google.internal./", "cloud metadata service"),
        ("http://metadata/", "cloud metadata service"),
        ("http://127.0.0.1:9000/hook", "loopback"),
        ("http://[::1]/hook", "loopback"),
        ("http://localhost:8080/", "loopback"),
        ("http://0.0.0.0/", "not a unicast address"),
        ("http://224.0.0.1/", "not a unicast address"),
        ("http://example.com:99999/", "invalid port"),
    ],
)
def test_refused_urls(url: str, why: str) -> None:
    with pytest.raises(WebhookRefused, match=why):
        check_webhook_url(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://hooks.example.com/services/T0/B0/x",
        "http://10.0.0.5:8080/alerts",
        "http://192.168.1.10/hook?team=vision",
        "http://[2001:db8::1]/hook",
    ],
)
def test_allowed_urls(url: str) -> None:
    assert check_webhook_url(url) == url


def test_loopback_only_with_the_switch() -> None:
    assert check_webhook_url("http://127.0.0.1:9/x", allow_loopback=True)
    assert check_webhook_url("http://localhost/x", allow_loopback=True)
    with pytest.raises(WebhookRefused, match="link-local"):  # the switch opens loopback, nothing else
        check_webhook_url("http://169.254.169.254/", allow_loopback=True)


@pytest.mark.parametrize(
    ("addresses", "why"),
    [
        (["169.254.169.254"], "resolves to 169.254.169.254, which is link-local"),
        (["93.184.216.34", "127.0.0.1"], "resolves to 127.0.0.1, which is loopback"),
        (["fe80::1%eth0"], "link-local"),
        ([], "has no address"),
    ],
)
def test_every_resolved_address_is_checked(addresses: list[str], why: str) -> None:
    with pytest.raises(WebhookRefused, match=why):
        resolve_webhook("http://hooks.example.com/x", resolver=lambda _h, _p: addresses)


def test_resolution_pins_the_checked_address() -> None:
    target = resolve_webhook("https://hooks.example.com/a?b=1", resolver=lambda _h, _p: ["93.184.216.34"])
    assert (target.scheme, target.host, target.address, target.port, target.path) == (
        "https",
        "hooks.example.com",
        "93.184.216.34",
        443,
        "/a?b=1",
    )


def test_bad_webhook_in_settings_is_a_config_error(tmp_path: Path) -> None:
    f = tmp_path / "visionloop.toml"
    f.write_text('[monitor]\nwebhook_url = "http://169.254.169.254/latest"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(f)
    assert "invalid setting `monitor`" in info.value.message and "link-local" in info.value.message
    assert "Fix: correct `monitor`" in info.value.message
    f.write_text('[monitor]\nwebhook_url = "http://127.0.0.1:9/x"\nwebhook_allow_loopback = true\n')
    assert load_settings(f).monitor.webhook_url == "http://127.0.0.1:9/x"


class _Receiver(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[str, dict[str, Any], str]]] = []
    status: ClassVar[int] = 204

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        type(self).received.append((self.path, json.loads(body), self.headers["content-type"]))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[_Receiver]]]:
    handler = type("Handler", (_Receiver,), {"received": [], "status": 204})
    server = HTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/hooks/vision", handler
    finally:
        server.shutdown()
        server.server_close()


def test_webhook_receives_the_alert_json(receiver: tuple[str, type[_Receiver]]) -> None:
    url, handler = receiver
    alerter = Alerter(url, allow_loopback=True, timeout_s=5)
    assert alerter.send({"alert": "drift", "model_version": 3, "flagged": ["brightness", "embedding"]})
    assert handler.received == [
        (
            "/hooks/vision",
            {"alert": "drift", "model_version": 3, "flagged": ["brightness", "embedding"]},
            "application/json",
        )
    ]
    assert (alerter.sent, alerter.failed) == (1, 0)


def test_webhook_failures_never_raise(
    receiver: tuple[str, type[_Receiver]], caplog: pytest.LogCaptureFixture
) -> None:
    url, handler = receiver
    assert not Alerter(url, timeout_s=5).send({"alert": "drift"})  # loopback without the switch
    assert handler.received == []
    assert "loopback" in caplog.text
    handler.status = 500
    bad = Alerter(url, allow_loopback=True, timeout_s=5)
    assert not bad.send({"alert": "drift"}) and bad.failed == 1
    closed = Alerter("http://127.0.0.1:9/x", allow_loopback=True, timeout_s=2)  # nothing listens there
    assert not closed.send({"alert": "drift"}) and closed.failed == 1
    assert "monitoring alert" in caplog.text  # the log line is written whatever happens
