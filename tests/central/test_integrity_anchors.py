"""Central's anchored chains on real SQLite and PostgreSQL: continuity, re-sends, deletions,
verify-clip."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from pydantic import ValidationError

from central.cli import main as central_cli
from central.ingest.broker_client import RawMessage
from central.ingest.pipeline import CLOCK_AHEAD_S, Ingest
from central.ingest.store import IngestStore
from central.integrity.audits import Audits
from central.integrity.prune import stored_chain_problems
from central.storage.db import CentralDatabase
from central.video.signing import KEY_FILE, ManifestSigner
from central.video.verify import verify_clip
from edge_agent.integrity.anchor import AnchorSender
from edge_agent.mqtt.outbox import Outbox
from edge_agent.recording.index import SegmentIndex, SegmentInfo
from fsv_common.digest import file_sha256
from fsv_contract import EventPayload, encode, topics
from fsv_contract.integrity import AnchorLink, AnchorPayload, CameraAnchor, Tombstone
from fsv_contract.video import GENESIS, ClipFile, ClipManifest, ManifestSegment, segment_link

SITE = "site-a"
DAY = 86400.0


def chain(shas: list[str], t0: float, prev: str = GENESIS, first: int = 0) -> list[AnchorLink]:
    """Links of consecutive 60 s segments with these digests, as the edge index makes them."""
    links = []
    for i, sha in enumerate(shas):
        path = f"cam1/2026-01-01/00/{first + i:02d}.00.mp4"
        seg = ManifestSegment(path=path, start=t0 + 60 * i, end=t0 + 60 * i + 60, bytes=100,
                              sha256=sha, prev_chain=prev, chain=GENESIS)  # fmt: skip
        link = segment_link(prev, "cam1", seg)
        links.append(AnchorLink(**{**seg.model_dump(exclude={"used"}), "chain": link}))
        prev = link
    return links


def anchor(
    links: list[AnchorLink], removed: list[Tombstone] | None = None, site: str = SITE
) -> RawMessage:
    payload = AnchorPayload(
        cameras=[CameraAnchor(camera="cam1", links=links, removed=removed or [])],
        created_at=datetime.now(UTC),
    )
    return RawMessage(topics.anchor(site), encode(payload), 0.0)


pytestmark = pytest.mark.databases("sqlite", "postgres")


@pytest.fixture
def anchors_db(tmp_path: Path, central_db_url: str | None) -> Path | str:
    """Central's database: the SQLite file in `tmp_path`, or a PostgreSQL URL."""
    return central_db_url or tmp_path / "central.db"


@pytest.fixture
def ingest(anchors_db: Path | str) -> Iterator[Ingest]:
    database = CentralDatabase(anchors_db)
    yield Ingest(IngestStore(database))
    database.close()


def findings(ingest: Ingest) -> list[str]:
    db = ingest.store.database
    with db.lock:
        rows = db.db.execute("select path, problem from integrity_findings order by id")
        return [f"{r[0]}: {r[1]}" for r in rows.fetchall()]


def tamper_events(ingest: Ingest) -> list[dict[str, Any]]:
    return [e for e in ingest.store.events() if e["kind"] == "footage_tampered"]


def sha(n: int) -> str:
    return hashlib.sha256(str(n).encode()).hexdigest()


def test_a_continuous_chain_and_its_repeats_raise_nothing(ingest: Ingest) -> None:
    links = chain([sha(i) for i in range(6)], time.time() - DAY)
    ingest.process([anchor(links[:3])])
    ingest.process([anchor(links[:3]), anchor(links[3:])])  # QoS 1 re-delivery, then more
    assert findings(ingest) == [] and tamper_events(ingest) == []


def test_a_fork_a_changed_resend_and_a_bad_link_are_tampering(ingest: Ingest) -> None:
    t0 = time.time() - DAY
    links = chain([sha(i) for i in range(4)], t0)
    ingest.process([anchor(links)])
    rewritten = chain([sha(0), sha(99), sha(2), sha(3)], t0)  # index rebuilt, file changed
    forged = links[3].model_copy(update={"bytes": 5})  # facts no longer match the link
    later = chain([sha(7)], t0 + 600, prev=sha(123), first=10)  # follows nothing known
    result = ingest.process([anchor(rewritten[1:3]), anchor([forged]), anchor(later)])
    problems = findings(ingest)
    assert "another SHA-256" in problems[0]
    assert "sent again with another chain link" in problems[1]
    assert "sent again with other facts" in problems[2]
    assert "does not follow the last anchored segment" in problems[3]
    assert len(problems) == 4
    events = tamper_events(ingest)
    assert len(events) == 1 and events[0]["severity"] == "critical"
    assert events[0]["details"]["count"] == 4 and result.new_events
    ingest.process([anchor(rewritten[1:2])])  # the same finding is not raised twice
    assert len(tamper_events(ingest)) == 1


def test_deletions_are_judged_by_the_retention_date_and_reason(ingest: Ingest) -> None:
    now = time.time()
    old = chain([sha(i) for i in range(2)], now - 91 * DAY)
    ingest.process([anchor(old)])
    due = Tombstone(path=old[0].path, chain=old[0].chain, removed_at=now, reason="retention")
    missing = Tombstone(path=old[1].path, chain=old[1].chain, removed_at=now,
                        reason="file missing at start-up")  # fmt: skip
    ingest.process([anchor([], [due, missing])])
    assert [p.split(": ", 1)[1] for p in findings(ingest)] == [
        "deleted on the box (file missing at start-up)"
    ]
    recent = chain([sha(10), sha(11)], now - 2 * DAY, prev=old[1].chain, first=2)
    ingest.process([anchor(recent)])
    early = Tombstone(path=recent[0].path, chain=recent[0].chain, removed_at=now,
                      reason="retention")  # fmt: skip
    ingest.process([anchor([], [early])])
    assert "days before its retention date" in findings(ingest)[-1]
    # An eviction under disk pressure is announced by the edge and excuses an early deletion.
    eviction = EventPayload(
        event_id=uuid4(), site=SITE, camera="", phase="end", kind="eviction_below_duty",
        station="", rule="retention", severity="critical", start=datetime.now(UTC),
        end=datetime.now(UTC), score=1.0,
    )  # fmt: skip
    ingest.process([RawMessage(topics.agent_event(SITE), encode(eviction), 0.0)])
    evicted = Tombstone(path=recent[1].path, chain=recent[1].chain, removed_at=now,
                        reason="retention")  # fmt: skip
    before = len(findings(ingest))
    ingest.process([anchor([], [evicted])])
    assert len(findings(ingest)) == before


def _manifest(links: list[AnchorLink], clip: bytes) -> ClipManifest:
    return ClipManifest(
        site=SITE, camera="cam1", requested_start=links[0].start, requested_end=links[-1].end,
        clip_start=links[0].start, clip_end=links[-1].end, codec="h264",
        file=ClipFile(name="clip.mp4", bytes=len(clip), sha256=hashlib.sha256(clip).hexdigest()),
        segments=[ManifestSegment(**lk.model_dump()) for lk in links], created_at=time.time(),
    )  # fmt: skip


def _evict_all(index: SegmentIndex, storage: Path) -> None:
    """What the edge's cleaner does on a full disk: every file, then the rows (tombstones)."""
    segs = index.segments(camera="cam1")
    for seg in segs:
        (storage / seg.path).unlink()
    index.delete_segments([s.id for s in segs], reason="retention")


def test_a_full_disk_evicting_all_a_camera_had_then_recording_on_raises_nothing(
    ingest: Ingest, tmp_path: Path
) -> None:
    """The edge index, its anchor sender and central's chain, end to end: a camera whose
    every segment the disk-full cleaner evicted goes on chaining from its tombstones, both
    when central had anchored the evicted links and when it had not yet."""
    storage = tmp_path / "storage"
    index = SegmentIndex(tmp_path / "index.db")
    outbox = Outbox(tmp_path / "outbox.db", SITE)
    sender = AnchorSender(index, outbox, {"cam1": 90})
    t0 = time.time() - 3600
    n = 0

    def record(count: int) -> None:
        nonlocal n
        for _ in range(count):
            rel = f"cam1/2026-01-01/00/{n:02d}.00.mp4"
            path = storage / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(f"segment {n}".encode())
            index.add_segment(SegmentInfo("cam1", rel, t0 + 60 * n, t0 + 60 * n + 60,
                                          path.stat().st_size, "h264", 640, 360, None,
                                          file_sha256(path)))  # fmt: skip
            n += 1

    def deliver() -> None:
        sender.run_once()
        sent = outbox.pending(limit=1000)
        ingest.process([RawMessage(m.topic, m.payload, 0.0) for m in sent])
        outbox.ack(m.id for m in sent)

    eviction = EventPayload(
        event_id=uuid4(), site=SITE, camera="", phase="end", kind="eviction_below_duty",
        station="", rule="retention", severity="critical", start=datetime.now(UTC),
        end=datetime.now(UTC), score=1.0,
    )  # fmt: skip
    ingest.process([RawMessage(topics.agent_event(SITE), encode(eviction), 0.0)])
    record(3)
    deliver()  # central anchored these three
    _evict_all(index, storage)
    record(1)
    deliver()
    record(2)
    _evict_all(index, storage)  # evicted before they were anchored (uplink down meanwhile)
    record(1)
    deliver()
    assert index.verify_chain("cam1", storage) == []
    assert findings(ingest) == [] and tamper_events(ingest) == []
    with ingest.store.database.lock:
        db = ingest.store.database.db
        rows = db.execute("select count(*), count(removed_at) from anchored_segments")
        assert tuple(rows.fetchone()) == (7, 6)
        assert stored_chain_problems(db, SITE, "cam1") == []
    outbox.close()
    index.close()


def test_verify_clip_checks_the_segments_against_the_anchored_chain(
    ingest: Ingest, anchors_db: Path | str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    t0 = time.time() - DAY
    ingest.process([anchor(chain([sha(i) for i in range(3)], t0))])
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"an exported clip")
    good = tmp_path / "good.json"
    good.write_text(_manifest(chain([sha(i) for i in range(3)], t0), clip.read_bytes())
                    .model_dump_json())  # fmt: skip
    # A box that rewrote a segment and rebuilt its index makes a self-consistent manifest.
    # Central signed what the box sent when it exported the clip: the signature holds.
    signer = ManifestSigner(tmp_path / KEY_FILE)
    forged = tmp_path / "forged.json"
    signed = signer.sign(_manifest(chain([sha(0), sha(42), sha(2)], t0), clip.read_bytes()))
    forged.write_text(signed.model_dump_json())
    db = anchors_db
    assert verify_clip(clip, good, None, db).ok
    report = verify_clip(clip, forged, None, db)
    assert not report.ok and all("differs from the link" in p for p in report.problems)
    assert len(report.problems) == 2  # the rewritten segment and every link after it
    assert verify_clip(clip, forged, None).ok  # without central's anchors it would pass
    verify = ["verify-clip", str(clip), str(forged), "--data-dir", str(tmp_path)]
    assert central_cli([*verify, "--database", str(anchors_db)]) == 1
    out = capsys.readouterr().out
    assert "differs from the link central anchored" in out
    assert "signature by central checked" in out


def test_links_past_retention_are_pruned_to_a_checkpoint_the_chain_goes_on_from(
    ingest: Ingest, anchors_db: Path | str, tmp_path: Path
) -> None:
    now = time.time()
    links = chain([sha(i) for i in range(12)], now - 200 * DAY)  # 12 segments of 60 s
    ingest.process([anchor(links)])
    # The box deleted the first ten at their retention date and still holds the last two
    # (an evidence hold keeps them): those stay, and so does whatever an event holds.
    deleted = [Tombstone(path=lk.path, chain=lk.chain, removed_at=lk.end + 90 * DAY,
                         reason="retention") for lk in links[:10]]  # fmt: skip
    ingest.process([anchor([], deleted)])
    at = datetime.fromtimestamp(links[5].start + 10, UTC)
    event = EventPayload(
        event_id=uuid4(), site=SITE, camera="cam1", phase="end", kind="no_chef_hat",
        station="kitchen", rule="hat", severity="warning", start=at, end=at, score=0.9,
    )  # fmt: skip
    ingest.process([RawMessage(topics.event_topic(SITE, "cam1"), encode(event), 0.0)])
    database = ingest.store.database
    audits = Audits(database, clock=lambda: now)

    done = audits.prune()

    # The event holds from 60 s before it to 120 s after it: segments 4 to 7 stay.
    with database.lock:
        db = database.db
        kept = [r[0] for r in db.execute("select path from anchored_segments order by id")]
        checkpoint = db.execute("select chain, path, pruned from anchor_checkpoints").fetchone()
        assert stored_chain_problems(db, SITE, "cam1") == []
    assert kept == [lk.path for lk in links[4:8] + links[10:]]
    assert [(p.camera, p.links) for p in done] == [("cam1", 6)]
    assert tuple(checkpoint) == (links[9].chain, links[9].path, 6)
    assert audits.prune() == []  # nothing more to prune; the event's links stay
    # New links are still checked against the head; a stored chain that lost a link does not.
    ingest.process([anchor(chain([sha(20)], now - 60, prev=links[11].chain, first=12))])
    assert findings(ingest) == [] and tamper_events(ingest) == []
    with database.transaction() as db:
        db.execute("delete from anchored_segments where path = ?", [links[10].path])
        db.execute("update anchored_segments set bytes = 7 where path = ?", [links[5].path])
        problems = stored_chain_problems(db, SITE, "cam1")
    assert problems == [
        f"{links[5].path}: the stored link does not match its facts",
        f"{links[11].path}: does not follow {links[9].path}",
    ]
    # An exported clip of the event's footage still verifies against the anchored links.
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"the event's clip")
    manifest = tmp_path / "clip.json"
    manifest.write_text(_manifest(links[6:8], clip.read_bytes()).model_dump_json())
    assert verify_clip(clip, manifest, None, anchors_db).ok


def test_pruning_runs_with_the_audit_rounds_once_a_day(ingest: Ingest) -> None:
    now = [time.time()]
    links = chain([sha(i) for i in range(3)], now[0] - 200 * DAY)
    ingest.process([anchor(links)])
    audits = Audits(ingest.store.database, clock=lambda: now[0])
    audits.run_round(NoCommands())  # pruned nothing: the box never deleted these
    deleted = [Tombstone(path=lk.path, chain=lk.chain, removed_at=lk.end + 90 * DAY,
                         reason="retention") for lk in links[:2]]  # fmt: skip
    ingest.process([anchor([], deleted)])

    def anchored() -> int:
        with ingest.store.database.lock:
            return int(ingest.store.database.db.execute(
                "select count(*) from anchored_segments").fetchone()[0])  # fmt: skip

    audits.run_round(NoCommands())
    assert anchored() == 3  # the day is not over
    now[0] += DAY
    audits.run_round(NoCommands())
    assert anchored() == 1


class NoCommands:
    """A command link with no site connected: audits wait, pruning does not."""

    def send(self, site: str, verb: str, args: dict[str, Any], ttl_s: float | None = None) -> str:
        raise ConnectionError("not connected")

    def get(self, request_id: str) -> dict[str, Any] | None:
        return None


def anchored_paths(ingest: Ingest) -> list[str]:
    db = ingest.store.database
    with db.lock:
        rows = db.db.execute("select path from anchored_segments order by id").fetchall()
    return [str(r[0]) for r in rows]


def test_a_link_that_ends_before_it_starts_is_invalid(ingest: Ingest) -> None:
    good = chain([sha(0)], time.time() - DAY)[0]
    with pytest.raises(ValidationError) as err:
        AnchorLink(**{**good.model_dump(), "end": good.start - 1})
    assert [e["loc"] for e in err.value.errors()] == [("end",)]
    # Sent anyway, the anchor message is refused whole, with the field named.
    data = json.loads(anchor([good]).payload)
    data["cameras"][0]["links"][0]["end"] = good.start - 1
    result = ingest.process([RawMessage(topics.anchor(SITE), json.dumps(data).encode(), 0.0)])
    assert (result.accepted, result.rejected) == (0, 1)
    assert "end" in ingest.store.rejects(limit=1)[0]["reason"]
    assert anchored_paths(ingest) == []


def test_a_link_dated_ahead_of_centrals_clock_is_refused_and_the_chain_goes_on(
    ingest: Ingest,
) -> None:
    now = time.time()
    before = chain([sha(0), sha(1)], now - DAY)
    ahead = chain([sha(2)], now + 3650 * DAY, prev=before[-1].chain, first=2)
    after = chain([sha(3), sha(4)], now - DAY + 180, prev=ahead[0].chain, first=3)
    result = ingest.process([anchor(before + ahead + after)])

    # The link dated ten years ahead is refused alone: logged, counted, its reason kept.
    assert (result.accepted, result.rejected) == (1, 0)
    assert ingest.store.stats()["anchor_links_refused"] == 1
    [reject] = ingest.store.rejects(limit=5)
    assert reject["topic"] == topics.anchor(SITE)
    assert ahead[0].path in reject["reason"] and "ahead of central's clock" in reject["reason"]
    # The rest of the batch is anchored; the refused segment is not.
    assert anchored_paths(ingest) == [link.path for link in before + after]
    # Central's chain has a gap where the refused link was: a finding on the link after it,
    # which from then on is the chain that later links are checked against.
    gap = f"{after[0].path}: does not follow the last anchored segment {before[-1].path}"
    assert findings(ingest) == [gap]
    assert len(tamper_events(ingest)) == 1
    with ingest.store.database.lock:
        stored = stored_chain_problems(ingest.store.database.db, SITE, "cam1")
    assert stored == [f"{after[0].path}: does not follow {before[-1].path}"]
    more = chain([sha(5)], now - DAY + 300, prev=after[-1].chain, first=5)
    fork = chain([sha(6)], now - DAY + 360, prev=before[0].chain, first=6)
    ingest.process([anchor(more)])
    assert findings(ingest) == [gap]
    ingest.process([anchor(fork)])
    assert findings(ingest)[1:] == [
        f"{fork[0].path}: does not follow the last anchored segment {more[0].path}"
    ]
    # A QoS 1 re-delivery of the first batch finds nothing new and is refused the same way.
    ingest.process([anchor(before + ahead + after)])
    assert len(findings(ingest)) == 2
    assert ingest.store.stats()["anchor_links_refused"] == 2


def test_a_link_just_inside_the_clock_allowance_is_anchored(ingest: Ingest) -> None:
    # A box whose clock runs a few minutes fast is still anchored.
    near = chain([sha(0)], time.time() + CLOCK_AHEAD_S - 90)  # ends 30 s inside the allowance
    result = ingest.process([anchor(near)])
    assert (result.accepted, result.rejected) == (1, 0)
    assert anchored_paths(ingest) == [near[0].path]
    assert ingest.store.stats().get("anchor_links_refused", 0) == 0


def test_a_stored_link_that_ends_before_it_starts_still_checks(ingest: Ingest) -> None:
    # Rows anchored before links had to end after they start are checked, not refused.
    t0 = time.time() - DAY
    seg = ManifestSegment(path="cam1/old.mp4", start=t0, end=t0 - 60, bytes=1, sha256=sha(0),
                          prev_chain=GENESIS, chain=GENESIS)  # fmt: skip
    link = segment_link(GENESIS, "cam1", seg)
    db = ingest.store.database
    with db.lock:
        db.db.execute(
            'insert into anchored_segments (site, camera, path, start, "end", bytes, sha256, '
            "prev_chain, chain, retention_days, anchored_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "?, ?)",
            [SITE, "cam1", seg.path, t0, t0 - 60, 1, sha(0), GENESIS, link, 90, t0],
        )  # fmt: skip
        assert stored_chain_problems(db.db, SITE, "cam1") == []
        db.db.execute("update anchored_segments set bytes = 2")
        assert stored_chain_problems(db.db, SITE, "cam1") == [
            "cam1/old.mp4: the stored link does not match its facts"
        ]
