"""The media queue: validation at the door, retry timing, permanent failures kept."""

import hashlib
from pathlib import Path
from uuid import uuid4

import pytest

from edge_agent.errors import OutboxError
from edge_agent.mqtt.outbox import Outbox


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_jobs_retry_after_their_delay_and_failures_are_kept(tmp_path: Path) -> None:
    clock = Clock()
    box = Outbox(tmp_path / "o.db", "s1", clock=clock)
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"x" * 100)
    digest = hashlib.sha256(clip.read_bytes()).hexdigest()
    eid = str(uuid4())
    box.queue_media(eid, "clip.mp4", clip, digest, "video/mp4")
    box.queue_media(eid, "clip.mp4", clip, digest, "video/mp4")  # same job, not twice
    (item,) = box.media.due()
    assert item.path == clip.resolve() and item.sha256 == digest
    box.media.retry_later(item.id, 30, "central unreachable")
    assert box.media.due() == [] and box.media.next_due_in() == 30
    clock.now += 31
    (item,) = box.media.due()
    assert item.attempts == 1
    box.media.fail(item.id, "file changed")
    assert box.media.pending_count() == 0
    assert box.media.failed() == [(eid, "clip.mp4", "file changed")]
    box.close()


@pytest.mark.parametrize(
    ("event_id", "name", "sha", "match"),
    [
        ("nope", "clip.mp4", "a" * 64, "UUID"),
        (None, "../clip.mp4", "a" * 64, "name"),
        (None, "clip.mp4", "A" * 64, "sha256"),
        (None, "missing.mp4", "a" * 64, "cannot be read"),
    ],
)
def test_bad_jobs_are_refused(
    tmp_path: Path, event_id: str | None, name: str, sha: str, match: str
) -> None:
    box = Outbox(tmp_path / "o.db", "s1")
    (tmp_path / "clip.mp4").write_bytes(b"x")
    with pytest.raises(OutboxError, match=match):
        box.queue_media(event_id or str(uuid4()), name, tmp_path / name, sha, "video/mp4")
    box.close()
