"""`central-server archive plan`: sites x cameras x bitrate x days against the archive's disk."""

from __future__ import annotations

import argparse
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([kKmMgGtTpP]?)(i?)[bB]?$")
_UNITS = {"": 0, "k": 1, "m": 2, "g": 3, "t": 4, "p": 5}


def parse_size(text: str, base: int = 1000) -> float:
    """'512k', '4M', '20T', '1.5Ti' as a number (decimal units; `i` for binary)."""
    m = _SIZE.match(text.strip())
    if m is None:
        raise ValueError(f"{text!r} is not a size like 512k, 4M or 20T")
    factor = 1024 if m[3] else base
    return float(m[1]) * float(factor ** _UNITS[m[2].lower()])


@dataclass(frozen=True)
class CapacityPlan:
    """What the archive needs and what the disk holds."""

    sites: int
    cameras_per_site: int
    bitrate_bps: float
    days: int
    disk_bytes: int
    reserve_percent: float

    @property
    def bytes_per_day(self) -> float:
        """Footage arriving per day, all cameras."""
        return self.sites * self.cameras_per_site * self.bitrate_bps / 8 * 86400

    @property
    def needed_bytes(self) -> float:
        """Footage held at full retention."""
        return self.bytes_per_day * self.days

    @property
    def usable_bytes(self) -> float:
        """The disk less the free-space reserve."""
        return self.disk_bytes * (1 - self.reserve_percent / 100)

    @property
    def days_held(self) -> float:
        """Days of footage the disk holds."""
        return self.usable_bytes / self.bytes_per_day if self.bytes_per_day else float("inf")

    @property
    def fits(self) -> bool:
        """Whether the disk holds the retention."""
        return self.needed_bytes <= self.usable_bytes

    @property
    def uplink_mbps_per_site(self) -> float:
        """Continuous uplink a site needs for this archive (Mbit/s)."""
        return self.cameras_per_site * self.bitrate_bps / 1e6

    def text(self) -> str:
        """The plan as lines for a terminal."""
        tb = 1e12
        verdict = "fits" if self.fits else "DOES NOT FIT"
        cameras = self.sites * self.cameras_per_site
        return "\n".join([
            f"{self.sites} sites x {self.cameras_per_site} cameras = {cameras} cameras at "
            f"{self.bitrate_bps / 1e6:.2f} Mbit/s, kept {self.days} days",
            f"  intake      {self.bytes_per_day / tb:.3f} TB/day",
            f"  needed      {self.needed_bytes / tb:.2f} TB",
            f"  disk        {self.disk_bytes / tb:.2f} TB, usable {self.usable_bytes / tb:.2f} TB "
            f"(keeping {self.reserve_percent:.0f}% free)",
            f"  holds       {self.days_held:.1f} days: {verdict}",
            f"  uplink      {self.uplink_mbps_per_site:.2f} Mbit/s per site, continuous",
        ])  # fmt: skip


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `archive` sub-command (`archive plan`)."""
    p = subparsers.add_parser("archive", help="the city archive: capacity plan")
    sub = p.add_subparsers(dest="archive_command", required=True, metavar="ACTION")
    q = sub.add_parser(
        "plan",
        help="sites x cameras x bitrate x days against the archive's disk",
        description="Print how much disk the city archive needs and how many days a disk "
        "holds. Sizes take k/M/G/T suffixes (decimal; Ti etc. binary).",
    )
    q.add_argument("--sites", type=int, required=True, help="number of sites archived")
    q.add_argument("--cameras", type=int, default=8, help="cameras per site (default 8)")
    q.add_argument("--bitrate", default="512k", help="bits/s per camera (default 512k)")
    q.add_argument("--days", type=int, default=90, help="retention in days (default 90)")
    q.add_argument("--disk", default=None, help="disk size (default: the size of --path's disk)")
    q.add_argument("--path", type=Path, default=Path("."), help="archive folder to measure")
    q.add_argument("--reserve", type=float, default=10.0, help="percent kept free (default 10)")


def run(args: argparse.Namespace) -> int:
    """Print the plan; exit 0 if it fits, 1 if it does not, 2 on bad input."""
    try:
        bitrate = parse_size(args.bitrate)
        disk = int(parse_size(args.disk)) if args.disk else shutil.disk_usage(args.path).total
    except (ValueError, OSError) as e:
        print(f"error: {e}")
        return 2
    if args.sites < 1 or args.cameras < 1 or args.days < 1 or bitrate <= 0:
        print("error: sites, cameras, days and bitrate must be positive")
        return 2
    plan = CapacityPlan(args.sites, args.cameras, bitrate, args.days, disk, args.reserve)
    print(plan.text())
    return 0 if plan.fits else 1
