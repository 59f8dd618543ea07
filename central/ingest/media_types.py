"""The media types central accepts from edges and serves back: an allow-list checked by content.

An edge box belongs to the supervised enterprise, so what it announces is not trusted: an
event may only announce a type of this list, and an upload must start with that type's magic
bytes. Everything else is refused (and counted), so an upload can never become a page.
"""

from __future__ import annotations

import re

# type -> file extension; JPEG/PNG/WebP snapshots and photos, MP4 (also fragmented) clips.
ALLOWED_TYPES: dict[str, str] = {
    "image/jpeg": "jpg",
    "image/png": "png",
    "image/webp": "webp",
    "video/mp4": "mp4",
}
SNIFF_BYTES = 12  # enough for every signature below
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


def sniff(head: bytes) -> str | None:
    """The allowed type whose signature `head` (the file's first bytes) carries, or None."""
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp":  # ISO base media: plain and fragmented MP4 start with `ftyp`
        return "video/mp4"
    return None


def allowed(content_type: str) -> bool:
    """Whether an announced content type is on the allow-list (exact, case-insensitive)."""
    return content_type.lower() in ALLOWED_TYPES


def safe_filename(name: str, content_type: str) -> str:
    """A download name of plain ASCII characters ending in the checked type's extension."""
    ext = ALLOWED_TYPES.get(content_type, "bin")
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    stem = _UNSAFE_NAME.sub("_", base.rsplit(".", 1)[0] if "." in base else base)[:100]
    return f"{stem.strip('._') or 'media'}.{ext}"
