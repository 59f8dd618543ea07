"""Pure parts of push: who wants an alert, and the bytes each kind of receiver gets."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import urllib.parse
from dataclasses import dataclass
from datetime import UTC, datetime, time
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

SEVERITY_RANK = {"info": 0, "warning": 1, "critical": 2}
WEBHOOK_FORMATS = ("json", "wecom", "dingtalk")

KIND_LABELS = {
    "no_chef_hat": "未戴厨师帽 no chef hat",
    "no_mask": "未戴口罩 no mask",
    "smoking": "吸烟 smoking",
    "phone_use": "玩手机 phone use",
    "rodent": "鼠患 rodent",
    "person_in_zone": "区域闯入 person in zone",
    "unattended_station": "岗位无人 unattended station",
    "after_hours_activity": "非工作时间作业 after-hours activity",
    "retention_at_risk": "录像存储不足 retention at risk",
    "footage_tampered": "录像被篡改 footage tampered",
}


class QuietHours(BaseModel):
    """A daily window (local time) in which only critical alerts are pushed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: time = Field(description="e.g. 22:00")
    end: time = Field(description="e.g. 07:00; may be earlier than start (over midnight)")
    timezone: str = "Asia/Shanghai"

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {value!r}") from e
        return value


class PushFilters(BaseModel):
    """Which alerts a user or webhook wants; empty lists mean "all"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kinds: list[str] = Field(default_factory=list, max_length=64)
    stations: list[str] = Field(default_factory=list, max_length=64)
    min_severity: Literal["info", "warning", "critical"] = "info"
    quiet_hours: QuietHours | None = None


def in_quiet_hours(quiet: QuietHours, now: float) -> bool:
    """True if `now` (UTC epoch) falls in the quiet window in its time zone."""
    local = datetime.fromtimestamp(now, UTC).astimezone(ZoneInfo(quiet.timezone)).time()
    if quiet.start <= quiet.end:
        return quiet.start <= local < quiet.end
    return local >= quiet.start or local < quiet.end


def wants(filters: PushFilters, alert: dict[str, Any], now: float) -> bool:
    """True if an alert passes a receiver's filters at time `now`.

    Quiet hours hold back everything except critical alerts: a rodent in the kitchen at
    night still wakes the manager, a missing hat does not.
    """
    if filters.kinds and alert["kind"] not in filters.kinds:
        return False
    if filters.stations and alert["station"] not in filters.stations:
        return False
    severity = SEVERITY_RANK.get(alert["severity"], 1)
    if severity < SEVERITY_RANK[filters.min_severity]:
        return False
    if filters.quiet_hours and in_quiet_hours(filters.quiet_hours, now):
        return severity >= SEVERITY_RANK["critical"]
    return True


@dataclass(frozen=True)
class OutgoingRequest:
    """An HTTP POST ready to send."""

    url: str
    body: bytes
    headers: dict[str, str]


def alert_summary(alert: dict[str, Any], base_url: str) -> dict[str, Any]:
    """The fields every push format carries about an alert."""
    start = datetime.fromtimestamp(float(alert["start"]), UTC)
    return {
        "id": alert["id"],
        "kind": alert["kind"],
        "title": KIND_LABELS.get(alert["kind"], alert["kind"]),
        "severity": alert["severity"],
        "site": alert["site_id"],
        "camera": alert["camera_id"],
        "station": alert["station"],
        "enterprise": alert.get("enterprise_name") or "",
        "start": start.isoformat().replace("+00:00", "Z"),
        "url": f"{base_url.rstrip('/')}/inbox#alert={alert['id']}",
    }


# Markdown and HTML that would make a link, a tag or a new line, as full-width look-alikes.
_PLAIN = str.maketrans({"[": "［", "]": "］", "(": "（", ")": "）", "<": "＜", ">": "＞",
                        "\n": " ", "\r": " ", "`": "｀"})  # fmt: skip


def plain(text: str) -> str:
    """`text` (the edge box's or a user's words) as plain words inside a chat message: no
    link, tag or line of its own can appear in the platform's message."""
    return text.translate(_PLAIN)


def _markdown(s: dict[str, Any]) -> str:
    return (
        f"### {s['title']}\n"
        f"> 企业 enterprise: {plain(s['enterprise'] or s['site'])}\n"
        f"> 岗位 station: {plain(s['station'])} · 摄像机 camera: {s['camera']}\n"
        f"> 级别 severity: {s['severity']} · 时间 time (UTC): {s['start']}\n\n"
        f"[请整改 / open alert]({s['url']})"
    )


def webhook_request(
    fmt: str, url: str, alert: dict[str, Any], base_url: str, secret: str, now: float
) -> OutgoingRequest:
    """The request a webhook of format `fmt` receives for an alert.

    `json` carries the summary and, with a secret, an HMAC-SHA256 header of the body;
    `wecom` is a WeCom group-robot markdown message; `dingtalk` is a DingTalk robot markdown
    message, signed the DingTalk way (timestamp and sign query parameters) with a secret.
    """
    summary = alert_summary(alert, base_url)
    headers = {"Content-Type": "application/json; charset=utf-8"}
    if fmt == "json":
        body = json.dumps({"type": "alert", "alert": summary}, ensure_ascii=False).encode()
        if secret:
            digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            headers["X-FSV-Signature"] = f"sha256={digest}"
        return OutgoingRequest(url, body, headers)
    if fmt == "wecom":
        payload = {"msgtype": "markdown", "markdown": {"content": _markdown(summary)}}
        return OutgoingRequest(url, json.dumps(payload, ensure_ascii=False).encode(), headers)
    if fmt == "dingtalk":
        payload = {
            "msgtype": "markdown",
            "markdown": {"title": summary["title"], "text": _markdown(summary)},
        }
        if secret:
            url = dingtalk_signed_url(url, secret, int(now * 1000))
        return OutgoingRequest(url, json.dumps(payload, ensure_ascii=False).encode(), headers)
    raise ValueError(f"unknown webhook format {fmt!r} (one of {', '.join(WEBHOOK_FORMATS)})")


def webhook_test_request(
    fmt: str, url: str, base_url: str, secret: str, now: float
) -> OutgoingRequest:
    """A test message in a webhook's format, signed like an alert, so a receiver can be checked.

    `json` receivers tell it from an alert by ``"type": "test"``; WeCom and DingTalk robots
    show it as a short markdown message.
    """
    headers = {"Content-Type": "application/json; charset=utf-8"}
    sent = datetime.fromtimestamp(now, UTC).isoformat().replace("+00:00", "Z")
    text = f"### 测试消息 test message\n> 食品安全视频监管平台 {base_url} · {sent}"
    if fmt == "json":
        body = json.dumps(
            {"type": "test", "sent_at": sent, "from": base_url}, ensure_ascii=False
        ).encode()
        if secret:
            digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            headers["X-FSV-Signature"] = f"sha256={digest}"
        return OutgoingRequest(url, body, headers)
    if fmt == "wecom":
        payload = {"msgtype": "markdown", "markdown": {"content": text}}
        return OutgoingRequest(url, json.dumps(payload, ensure_ascii=False).encode(), headers)
    if fmt == "dingtalk":
        payload = {"msgtype": "markdown", "markdown": {"title": "测试消息 test", "text": text}}
        if secret:
            url = dingtalk_signed_url(url, secret, int(now * 1000))
        return OutgoingRequest(url, json.dumps(payload, ensure_ascii=False).encode(), headers)
    raise ValueError(f"unknown webhook format {fmt!r} (one of {', '.join(WEBHOOK_FORMATS)})")


def dingtalk_signed_url(url: str, secret: str, timestamp_ms: int) -> str:
    """DingTalk's robot signature: base64(HMAC-SHA256(secret, "{timestamp}\\n{secret}"))."""
    to_sign = f"{timestamp_ms}\n{secret}".encode()
    sign = base64.b64encode(hmac.new(secret.encode(), to_sign, hashlib.sha256).digest())
    query = urllib.parse.urlencode({"timestamp": timestamp_ms, "sign": sign.decode()})
    return f"{url}{'&' if '?' in url else '?'}{query}"


def webpush_message(alert: dict[str, Any], base_url: str) -> bytes:
    """The (unencrypted) JSON a subscribed phone's service worker receives."""
    s = alert_summary(alert, base_url)
    body = f"{s['enterprise'] or s['site']} · {s['station']} · {s['start']}"
    return json.dumps(
        {"title": s["title"], "body": body, "url": s["url"], "alert": s}, ensure_ascii=False
    ).encode()


def backoff_delays(
    attempts: int, first_s: float, factor: float = 2.0, cap_s: float = 300.0
) -> list[float]:
    """The waits between `attempts` tries: first_s, first_s*factor, ... capped at cap_s."""
    return [min(cap_s, first_s * factor**i) for i in range(max(0, attempts - 1))]


def is_permanent_failure(status: int) -> bool:
    """True for answers that retrying cannot fix (a gone subscription, a refused request)."""
    return status in (400, 401, 403, 404, 410, 413)
