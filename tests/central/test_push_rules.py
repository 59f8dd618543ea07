"""Push filters and the webhook formats."""

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlsplit

import pytest

from central.alerts.push_rules import (
    PushFilters,
    QuietHours,
    backoff_delays,
    webhook_request,
    webpush_message,
)

ALERT = {
    "id": "a1",
    "kind": "no_chef_hat",
    "severity": "warning",
    "site_id": "s1",
    "camera_id": "c1",
    "station": "kitchen_prep",
    "start": 1_700_000_000.0,
    "enterprise_name": "第一小学食堂",
}
NOON_UTC = datetime(2026, 1, 1, 4, 0, tzinfo=UTC).timestamp()  # 12:00 in Shanghai
NIGHT_UTC = datetime(2026, 1, 1, 15, 0, tzinfo=UTC).timestamp()  # 23:00 in Shanghai


def test_filters_kinds_stations_severity() -> None:
    assert PushFilters().model_copy() is not None
    assert _wants(PushFilters(), ALERT, NOON_UTC)
    assert not _wants(PushFilters(kinds=["rodent"]), ALERT, NOON_UTC)
    assert not _wants(PushFilters(stations=["storage"]), ALERT, NOON_UTC)
    assert not _wants(PushFilters(min_severity="critical"), ALERT, NOON_UTC)


def test_quiet_hours_hold_back_all_but_critical() -> None:
    quiet = PushFilters(quiet_hours=QuietHours.model_validate({"start": "22:00", "end": "07:00"}))
    assert _wants(quiet, ALERT, NOON_UTC)
    assert not _wants(quiet, ALERT, NIGHT_UTC)
    assert _wants(quiet, {**ALERT, "severity": "critical"}, NIGHT_UTC)


def _wants(f: PushFilters, alert: dict[str, object], now: float) -> bool:
    from central.alerts.push_rules import wants

    return wants(f, alert, now)


def test_json_webhook_signed() -> None:
    req = webhook_request("json", "http://127.0.0.1:1/h", ALERT, "https://c.example", "k", 0)
    body = json.loads(req.body)
    assert body["alert"]["kind"] == "no_chef_hat"
    assert body["alert"]["url"] == "https://c.example/inbox#alert=a1"
    want = hmac.new(b"k", req.body, hashlib.sha256).hexdigest()
    assert req.headers["X-FSV-Signature"] == f"sha256={want}"


def test_wecom_and_dingtalk_formats() -> None:
    wecom = json.loads(webhook_request("wecom", "http://h/x", ALERT, "http://c", "", 0).body)
    assert wecom["msgtype"] == "markdown" and "第一小学食堂" in wecom["markdown"]["content"]
    req = webhook_request("dingtalk", "http://h/x?access_token=t", ALERT, "http://c", "SEC", 1.5)
    ding = json.loads(req.body)
    assert ding["markdown"]["title"].startswith("未戴厨师帽")
    q = parse_qs(urlsplit(req.url).query)
    assert q["access_token"] == ["t"] and q["timestamp"] == ["1500"]
    sign = base64.b64encode(hmac.new(b"SEC", b"1500\nSEC", hashlib.sha256).digest()).decode()
    assert q["sign"] == [sign]
    with pytest.raises(ValueError):
        webhook_request("slack", "http://h", ALERT, "http://c", "", 0)


def test_webpush_message_and_backoff() -> None:
    msg = json.loads(webpush_message(ALERT, "http://c"))
    assert msg["alert"]["id"] == "a1" and msg["url"].endswith("#alert=a1")
    assert backoff_delays(5, 2.0, cap_s=10) == [2.0, 4.0, 8.0, 10]
    assert backoff_delays(1, 2.0) == []


def test_a_station_from_the_edge_cannot_add_a_link_or_lines_to_a_chat_message() -> None:
    # The edge box (the supervised party) names its stations; the regulators' group chat
    # must not show its words as the platform's own link or extra lines.
    phishing = "x\n\n[已整改 点此确认](http://203.0.113.9/p)<font>"
    alert = {**ALERT, "station": phishing}
    for fmt, url in (("wecom", "http://h/x"), ("dingtalk", "http://h/x?access_token=t")):
        body = json.loads(webhook_request(fmt, url, alert, "http://c", "", 0).body)
        text = body["markdown"].get("content") or body["markdown"]["text"]
        assert "](http://203.0.113.9" not in text and "<font>" not in text
        assert text.count("](") == 1  # only the platform's own "open alert" link
        station_line = next(line for line in text.splitlines() if "station" in line)
        assert "203.0.113.9" in station_line  # shown, on its own line, as plain words
