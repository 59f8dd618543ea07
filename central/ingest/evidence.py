"""Write-once evidence: an event's first announced snapshot, clip and frame are final.

An event belongs to the site that opened it. A later message about it (its end phase, or a
repeat of either phase) may add a snapshot or clip not announced yet, but never replace one
already announced: a different name or SHA-256 for a filled slot is refused, so the file a
regulator saw is the file central keeps. Refusals are counted (`evidence_refused`) and
written to the audit log by the ingest store.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from fsv_contract.payloads import EventPayload

SLOTS = ("snapshot", "clip", "first_clip", "frame")


@dataclass
class KnownEvent:
    """What central already holds about an event."""

    site: str
    phase: str
    refs: dict[str, dict[str, Any] | None]

    @classmethod
    def from_row(cls, site: str, phase: str, *refs: str | None) -> KnownEvent:
        """From the events table's columns (refs as JSON text, in SLOTS order)."""
        return cls(site, phase, {slot: _load(ref) for slot, ref in zip(SLOTS, refs, strict=True)})

    @classmethod
    def from_payload(cls, p: EventPayload) -> KnownEvent:
        """From the payload that created it."""
        data = p.model_dump(mode="json", include=set(SLOTS))
        return cls(p.site, p.phase, {slot: data[slot] for slot in SLOTS})


def _load(text: str | None) -> dict[str, Any] | None:
    value = json.loads(text) if text else None
    return value if isinstance(value, dict) else None


def merge_evidence(known: KnownEvent, p: EventPayload) -> tuple[dict[str, Any], list[str]]:
    """The refs to keep after message `p` (first announcement wins), and what was refused."""
    data = p.model_dump(mode="json", include=set(SLOTS))
    merged: dict[str, Any] = {}
    refused: list[str] = []
    for slot in SLOTS:
        old, new = known.refs.get(slot), data[slot]
        if old is None:
            merged[slot] = new
            continue
        merged[slot] = old
        if new is not None and (new["name"], new["sha256"]) != (old["name"], old["sha256"]):
            refused.append(
                f"{slot} {new['name']} {new['sha256'][:12]} would replace "
                f"{old['name']} {old['sha256'][:12]}"
            )
    return merged, refused


def foreign_site(known: KnownEvent, p: EventPayload) -> str | None:
    """Why `p` may not touch the event (another site's), or None."""
    if known.site != p.site:
        return f"site {p.site} sent a {p.phase} phase of an event opened by site {known.site}"
    return None
