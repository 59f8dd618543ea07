"""The `mqtt` section of the edge config: broker, TLS, credential name, outbox and upload bounds."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MqttTlsConfig(_Model):
    """TLS towards the broker; the broker's certificate is always verified."""

    ca_file: Path | None = Field(
        None, description="CA that signed the broker's certificate; default: the system CAs"
    )
    cert_file: Path | None = Field(None, description="client certificate, if the broker asks")
    key_file: Path | None = Field(None, description="key of the client certificate")


class OutboxConfig(_Model):
    """Bounds of the outbox (what is dropped first: see edge_agent/mqtt/outbox.py)."""

    max_messages: int = Field(200_000, ge=100, le=10_000_000)
    max_age_days: float = Field(30.0, gt=0, le=3650)
    inflight: int = Field(
        20, ge=1, le=1000, description="unacknowledged messages at once (the broker's maximum)"
    )
    resend_after_s: float = Field(
        60.0, gt=0, le=3600, description="publish again if no ack came while connected"
    )


class UploadConfig(_Model):
    """Media uploads to `central_url` (snapshots and clips)."""

    max_bytes: int = Field(512 << 20, ge=1, description="larger files are not uploaded")
    timeout_s: float = Field(60.0, gt=0, le=3600)
    backoff_initial_s: float = Field(5.0, gt=0, le=3600)
    backoff_max_s: float = Field(600.0, gt=0, le=86400)
    ca_file: Path | None = Field(
        None, description="CA of central's HTTPS certificate; default: the system CAs"
    )


class MqttConfig(_Model):
    """Connection to central's broker; the login comes from the credential store, never here."""

    host: str = Field(min_length=1, max_length=253)
    port: int = Field(8883, ge=1, le=65535)
    tls: MqttTlsConfig | None = Field(
        MqttTlsConfig(), description="TLS settings; null only for a broker on the loopback"
    )
    credential: str = Field(
        "mqtt",
        pattern=r"^[A-Za-z0-9_]{1,64}$",
        description="credential holding the site's MQTT username (= site id) and password",
    )
    keepalive_s: int = Field(30, ge=5, le=3600)
    session_expiry_s: int = Field(
        7 * 86400, ge=0, le=0xFFFFFFFF, description="how long the broker keeps our session"
    )
    reconnect_min_s: float = Field(1.0, gt=0, le=60)
    reconnect_max_s: float = Field(60.0, gt=0, le=3600)
    heartbeat_interval_s: float = Field(30.0, ge=1, le=3600)
    anchor_interval_s: float = Field(
        60.0, gt=0, le=3600, description="how often sealed segments' chain links go to central"
    )
    outbox: OutboxConfig = OutboxConfig()
    upload: UploadConfig = UploadConfig()
