"""Commands to edges over MQTT (`fsv/v1/{site}/cmd/{verb}`), logged with their replies."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from central.ingest.broker_client import BrokerClient
from central.storage.db import CentralDatabase
from fsv_contract import topics
from fsv_contract.codec import encode
from fsv_contract.payloads import CommandPayload

# Evidence holds must reach an edge that was offline for days (the broker queues them in the
# edge's persistent session): a hold that expired in transit would let retention delete
# the evidence. Interactive verbs keep the short default.
LONG_LIVED_VERBS_TTL_S = {"hold": 30 * 86400.0, "release": 30 * 86400.0}


class Commands:
    """Sends commands and reads their replies (which ingest writes into the same rows)."""

    def __init__(
        self,
        database: CentralDatabase,
        broker: BrokerClient,
        ttl_s: float = 300.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.database = database
        self.broker = broker
        self.ttl_s = ttl_s
        self._clock = clock

    def send(self, site: str, verb: str, args: dict[str, Any], ttl_s: float | None = None) -> str:
        """Log and publish a command (QoS 1); returns its request id. Thread-safe.

        `ttl_s` defaults to the verb's own (evidence holds: 30 days) or the instance's.
        """
        ttl = ttl_s if ttl_s is not None else LONG_LIVED_VERBS_TTL_S.get(verb, self.ttl_s)
        topic = topics.command(site, verb)
        now = self._clock()
        issued = datetime.fromtimestamp(now, UTC)
        payload = CommandPayload(
            request_id=uuid.uuid4(),
            args=args,
            issued_at=issued,
            expires_at=issued + timedelta(seconds=ttl),
        )
        data = encode(payload)
        request_id = str(payload.request_id)
        with self.database.transaction() as db:
            db.table("commands").insert(
                {
                    "request_id": request_id,
                    "site": site,
                    "verb": verb,
                    "args": json.dumps(args),
                    "issued_at": now,
                    "expires_at": now + ttl,
                }
            )
        self.broker.publish(topic, data, qos=1)
        return request_id

    def get(self, request_id: str) -> dict[str, Any] | None:
        """The command row with its reply (ok, result, error, replied_at), None if unknown."""
        with self.database.lock:
            cur = self.database.db.execute(
                "select * from commands where request_id = ?", [request_id]
            )
            names = [d[0] for d in cur.description]
            row = cur.fetchone()
        if row is None:
            return None
        data = dict(zip(names, row, strict=True))
        data["args"] = json.loads(data["args"])
        data["result"] = json.loads(data["result"]) if data["result"] else None
        return data
