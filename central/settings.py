"""Configuration sections of the regulator side: web sessions, uploads, push, public view."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork, field_validator


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WebConfig(_Section):
    """The web app and its REST API."""

    base_url: str = Field(
        "http://127.0.0.1:8080",
        pattern=r"^https?://[^/\s]+(/[^\s]*)?$",
        description="address users reach central at; used in push messages and QR codes",
    )
    cookie_secure: bool = Field(
        True, description="send the session cookie over HTTPS only (off only for local tests)"
    )
    session_hours: float = Field(
        12.0, gt=0, le=24 * 30, description="lifetime of a session (cookie or login bearer)"
    )
    idle_minutes: float = Field(
        60.0, gt=0, le=24 * 60, description="a session without requests this long ends"
    )
    token_max_days: int = Field(
        90, ge=1, le=366, description="longest lifetime of an API token (default 30 days)"
    )
    login_max_failures: int = Field(
        5, ge=1, le=1000, description="free failures per account and client before delays"
    )
    login_client_max_failures: int = Field(
        20, ge=1, le=100000, description="free failures per client (all accounts) before delays"
    )
    login_delay_s: float = Field(
        2.0, gt=0, le=3600, description="first delay; it doubles with each further failure"
    )
    login_max_delay_s: float = Field(900.0, gt=0, le=86400, description="longest delay")
    login_window_s: float = Field(
        300.0, gt=0, le=86400, description="quiet time after the delay that forgets failures"
    )
    trusted_proxies: list[IPv4Network | IPv6Network] = Field(
        default_factory=list,
        description="reverse proxies (addresses or networks) whose X-Forwarded-For names the"
        " client; from any other peer the header is ignored",
    )
    evidence_max_bytes: int = Field(
        10 << 20, ge=1024, le=200 << 20, description="largest rectification photo accepted"
    )
    evidence_max_files: int = Field(8, ge=1, le=50, description="photos per submission")
    evidence_dir: Path | None = Field(
        None, description="folder of rectification photos; default: <data_dir>/evidence"
    )
    public_rate_per_min: int = Field(
        60, ge=1, le=100000, description="requests per minute per address on public pages"
    )
    timezone: str = Field(
        "Asia/Shanghai", description="the site's time zone: every time and date on the pages"
    )

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {value!r} (e.g. Asia/Shanghai)") from e
        return value


class PushConfig(_Section):
    """Web Push (VAPID) and webhook delivery."""

    vapid_private_key_file: Path | None = Field(
        None, description="PEM made by `central-server vapid-keys`; no Web Push without it"
    )
    vapid_subject: str = Field(
        "mailto:ops@example.org",
        pattern=r"^(mailto:.+@.+|https://.+)$",
        description="contact the push services may reach (mailto: or https:)",
    )
    attempts: int = Field(5, ge=1, le=20, description="tries per message before it is failed")
    backoff_first_s: float = Field(2.0, gt=0, le=600, description="wait before the 2nd try")
    backoff_max_s: float = Field(300.0, gt=0, le=3600, description="longest wait between tries")
    timeout_s: float = Field(10.0, gt=0, le=120, description="per request")
    expire_s: float = Field(
        86400.0, gt=0, le=30 * 86400, description="a push still undelivered this long is dropped"
    )
    concurrency: int = Field(8, ge=1, le=100, description="deliveries in flight at once")
    ttl_s: int = Field(86400, ge=0, le=28 * 86400, description="Web Push TTL header")
    allow_networks: tuple[IPvAnyNetwork, ...] = Field(
        (),
        description="networks push and webhooks may reach although not public, e.g. an "
        "internal relay (plain http is accepted only to these); default: https to public "
        "addresses only",
    )


class VideoQuotaConfig(_Section):
    """Limits on video work, so one account cannot exhaust a site's uplink or the edge box.

    Every replay and every new live stream is an upstream the edge sends over its uplink;
    every export is a clip the edge cuts and uploads.
    """

    replays_per_user: int = Field(4, ge=1, le=1000, description="replays one user runs at once")
    live_per_user: int = Field(
        36, ge=1, le=1000, description="live streams one user watches at once (WebSocket)"
    )
    exports_per_hour_per_user: int = Field(
        20, ge=1, le=100000, description="clip exports one user may ask for in any hour"
    )
    exports_per_hour_per_site: int = Field(
        60, ge=1, le=100000, description="clip exports of one site's cameras in any hour"
    )
    site_streams: int = Field(
        8,
        ge=1,
        le=1000,
        description="upstreams (live, replay, exports in flight) a site's uplink carries at once",
    )
    user_site_share: float = Field(
        0.5,
        gt=0,
        le=1,
        description="share of a site's upstreams one user may start (at least one)",
    )
    recordings_answer_s: float = Field(
        10.0,
        gt=0,
        le=120,
        description="how long a replay waits for the edge's list of recordings before it "
        "says the site is unavailable",
    )
