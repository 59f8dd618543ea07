"""`central-server verify-clip FILE MANIFEST`: is this clip the one central exported?

Four checks: the file's size and SHA-256 against the manifest, the manifest's segment hash
chain link by link, central's signature over the manifest (with the public key), and, given
central's data folder, every segment against the chain link central anchored from the edge
when the segment was sealed.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from central.errors import ConfigError
from central.integrity.clip_check import anchor_problems
from central.video.signing import KEY_FILE, load_public_key, signature_ok
from fsv_common.digest import file_sha256
from fsv_contract.video import ClipManifest, chain_problems


@dataclass
class ClipReport:
    """What verification found: problems make the clip fail; notes are for information."""

    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True if nothing is wrong."""
        return not self.problems


def verify_clip(
    clip: Path,
    manifest_path: Path,
    public: Ed25519PublicKey | None,
    anchors_db: Path | str | None = None,
) -> ClipReport:
    """Check a clip against its manifest, central's signature and anchors (when given)."""
    report = ClipReport()
    try:
        manifest = ClipManifest.model_validate_json(manifest_path.read_bytes())
    except (OSError, ValueError) as e:
        report.problems.append(f"manifest {manifest_path}: unreadable or malformed: {e}")
        return report
    try:
        size, digest = clip.stat().st_size, file_sha256(clip)
    except OSError as e:
        report.problems.append(f"clip {clip}: cannot read: {e.strerror or e}")
        return report
    if size != manifest.file.bytes:
        report.problems.append(f"clip is {size} bytes, the manifest says {manifest.file.bytes}")
    if digest != manifest.file.sha256:
        report.problems.append("clip SHA-256 differs from the manifest: the file was altered")
    report.problems += chain_problems(manifest)
    used = sum(1 for s in manifest.segments if s.used)
    report.notes.append(
        f"{manifest.site}/{manifest.camera}, {manifest.clip_start:.3f} to {manifest.clip_end:.3f}"
        f" (UTC epoch), cut from {used} chained segment(s)"
    )
    if anchors_db is None:
        report.notes.append("anchored chain not checked (no central data folder given)")
    else:
        problems, notes = anchor_problems(manifest, anchors_db)
        report.problems += problems
        report.notes += notes
    if public is None:
        report.notes.append("signature not checked (no public key given)")
    elif not signature_ok(manifest, public):
        report.problems.append("central's signature over the manifest is missing or wrong")
    else:
        report.notes.append("signature by central checked")
    return report


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `verify-clip` sub-command."""
    p = subparsers.add_parser(
        "verify-clip",
        help="check an exported clip against its manifest",
        description="Check an exported clip's SHA-256, its segment hash chain, central's "
        "signature and (with --data-dir) the chain links central anchored from the edge. "
        "Exit status 0 if the clip is intact, 1 if not.",
    )
    p.add_argument("file", type=Path, help="the exported MP4")
    p.add_argument("manifest", type=Path, help="its manifest JSON")
    key = p.add_mutually_exclusive_group()
    key.add_argument("--public-key", type=Path, help="central's public key PEM")
    key.add_argument(
        "--data-dir",
        type=Path,
        help=f"central's data folder (holds {KEY_FILE} and central.db with the anchored chain)",
    )
    p.add_argument(
        "--database",
        help="central's database when it is not data-dir/central.db: a SQLite file or a "
        "postgresql:// URL (the anchored chain is read from it)",
    )


def run(args: argparse.Namespace) -> int:
    """Verify and print the verdict."""
    try:
        public = None
        if args.public_key is not None:
            public = load_public_key(args.public_key)
        elif args.data_dir is not None:
            public = load_public_key(args.data_dir / KEY_FILE)
    except (OSError, ValueError, ConfigError) as e:
        print(f"cannot load the key: {e}", file=sys.stderr)
        return 2
    anchors: Path | str | None = args.data_dir / "central.db" if args.data_dir else None
    if args.database:
        anchors = args.database if "://" in args.database else Path(args.database)
    report = verify_clip(args.file, args.manifest, public, anchors)
    for note in report.notes:
        print(note)
    for problem in report.problems:
        print(f"FAIL: {problem}")
    print("OK: the clip is intact" if report.ok else "FAILED: the clip does not verify")
    return 0 if report.ok else 1
