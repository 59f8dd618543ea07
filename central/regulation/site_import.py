"""Bulk registration from a CSV: organisation tree and sites, validated before anything is written.

One row per site: `province,city,county,enterprise,enterprise_type,site_id` and optionally
`site_name,address,licence_no,contact,phone` (the last four describe the enterprise).
Organisations are found by level, parent and name, and created when missing; a site that
already exists is skipped (its credentials are not reset). Every row is checked first, so a
bad file writes nothing and names each bad line.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

from central.errors import InvalidInputError
from central.regulation.org import ENTERPRISE_TYPES, SITE_ID, OrgStore
from central.regulation.scope import Scope
from central.schema import LockedDb

LEVELS = ("province", "city", "county", "enterprise")
REQUIRED = (*LEVELS, "enterprise_type", "site_id")
OPTIONAL = ("site_name", "address", "licence_no", "contact", "phone")
MAX_ERRORS_SHOWN = 20


@dataclass(frozen=True)
class SiteRow:
    """One valid line of the file."""

    line: int
    names: tuple[str, str, str, str]  # province, city, county, enterprise
    enterprise_type: str
    site_id: str
    site_name: str
    enterprise_info: dict[str, str]


@dataclass
class ImportResult:
    """What an import created and what it found already there."""

    orgs_created: int = 0
    sites_created: list[str] = field(default_factory=list)
    sites_existing: list[str] = field(default_factory=list)


def parse_sites_csv(text: str) -> list[SiteRow]:
    """Every row of the file, checked; InvalidInputError names the bad lines."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise InvalidInputError(f"the header lacks column(s): {', '.join(missing)}")
    rows: list[SiteRow] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    for n, raw in enumerate(reader, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in raw.items() if k is not None}
        problem = _row_problem(row, seen)
        if problem:
            errors.append(f"line {n}: {problem}")
            continue
        seen[row["site_id"]] = n
        rows.append(
            SiteRow(
                line=n,
                names=(row["province"], row["city"], row["county"], row["enterprise"]),
                enterprise_type=row["enterprise_type"],
                site_id=row["site_id"],
                site_name=row.get("site_name") or row["enterprise"],
                enterprise_info={k: row[k] for k in OPTIONAL[1:] if row.get(k)},
            )
        )
    if errors:
        more = len(errors) - MAX_ERRORS_SHOWN
        shown = errors[:MAX_ERRORS_SHOWN] + ([f"... and {more} more"] if more > 0 else [])
        raise InvalidInputError("nothing imported:\n  " + "\n  ".join(shown))
    if not rows:
        raise InvalidInputError("the file has no site rows")
    return rows


def _row_problem(row: dict[str, str], seen: dict[str, int]) -> str | None:
    empty = [c for c in REQUIRED if not row.get(c)]
    if empty:
        return f"empty {', '.join(empty)}"
    if row["enterprise_type"] not in ENTERPRISE_TYPES:
        return f"enterprise_type must be one of {', '.join(ENTERPRISE_TYPES)}"
    if not SITE_ID.match(row["site_id"]):
        return f"site id {row['site_id']!r}: lower-case letters, digits, '_' and '-'"
    if row["site_id"] in seen:
        return f"site id {row['site_id']} repeats line {seen[row['site_id']]}"
    return None


def import_sites(ldb: LockedDb, orgs: OrgStore, rows: list[SiteRow]) -> ImportResult:
    """Create the missing organisations and sites of `rows` (as an administrator)."""
    every = Scope.everything()
    with ldb.read() as db:
        known: dict[tuple[int | None, str, str], int] = {
            (r["parent_id"], r["level"], r["name"]): r["id"]
            for r in db.query("select id, parent_id, level, name from orgs")
        }
        existing = {r["id"] for r in db.query("select id from sites")}
    result = ImportResult()
    for row in rows:
        parent: int | None = None
        for level, name in zip(LEVELS, row.names, strict=True):
            key = (parent, level, name)
            if key not in known:
                info: dict[str, Any] = {"name": name}
                if level == "enterprise":
                    info |= {"enterprise_type": row.enterprise_type, **row.enterprise_info}
                known[key] = int(orgs.create_org(every, parent, level, **info)["id"])
                result.orgs_created += 1
            parent = known[key]
        if row.site_id in existing:
            result.sites_existing.append(row.site_id)
            continue
        assert parent is not None
        orgs.create_site(every, parent, row.site_id, row.site_name)
        existing.add(row.site_id)
        result.sites_created.append(row.site_id)
    return result
