"""Roles and what each may do; the scope (which subtree) is decided separately in scope.py."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """The kinds of user central knows."""

    ADMIN = "admin"
    CITY_MONITOR = "city_monitor"
    COUNTY_INSPECTOR = "county_inspector"
    ENTERPRISE_STAFF = "enterprise_staff"


class Permission(StrEnum):
    """Actions a handler asks about before it acts."""

    VIEW = "view"
    MANAGE_ORGS = "manage_orgs"
    MANAGE_USERS = "manage_users"
    ACKNOWLEDGE = "acknowledge"
    REQUEST_RECTIFICATION = "request_rectification"
    SUBMIT_RECTIFICATION = "submit_rectification"
    CLOSE = "close"
    REOPEN = "reopen"
    VIEW_REPORTS = "view_reports"
    VIEW_AUDIT = "view_audit"
    MANAGE_PUBLIC = "manage_public"
    MANAGE_WEBHOOKS = "manage_webhooks"
    WATCH_VIDEO = "watch_video"
    LABEL = "label"  # mark alerts true/false and draw boxes: training labels
    RECORD_INSPECTION = "record_inspection"  # an on-site inspection's result and rating


_REGULATOR = frozenset(
    {
        Permission.VIEW,
        Permission.ACKNOWLEDGE,
        Permission.REQUEST_RECTIFICATION,
        Permission.CLOSE,
        Permission.REOPEN,
        Permission.VIEW_REPORTS,
        Permission.MANAGE_PUBLIC,
        Permission.WATCH_VIDEO,
        Permission.LABEL,
        Permission.RECORD_INSPECTION,
    }
)

GRANTS: dict[Role, frozenset[Permission]] = {
    Role.ADMIN: frozenset(Permission),
    # Webhooks make central send requests to an address a user chose: admins only.
    Role.CITY_MONITOR: _REGULATOR,
    Role.COUNTY_INSPECTOR: _REGULATOR,
    Role.ENTERPRISE_STAFF: frozenset(
        {
            Permission.VIEW,
            Permission.SUBMIT_RECTIFICATION,
            Permission.MANAGE_PUBLIC,
            Permission.WATCH_VIDEO,
        }
    ),
}

# The organisation level a user of each role is attached to (None: any level).
ROLE_LEVEL: dict[Role, str | None] = {
    Role.ADMIN: None,
    Role.CITY_MONITOR: "city",
    Role.COUNTY_INSPECTOR: "county",
    Role.ENTERPRISE_STAFF: "enterprise",
}


def can(role: Role, permission: Permission) -> bool:
    """True if users of `role` may perform `permission` (within their scope)."""
    return permission in GRANTS[role]


def grantable_roles(role: Role) -> list[Role]:
    """The roles a user of `role` may give to others: only roles that can do nothing more.

    Nobody hands out a permission they do not hold themselves; with the grants above, only an
    administrator manages users at all, and within their own subtree.
    """
    if not can(role, Permission.MANAGE_USERS):
        return []
    return [r for r in Role if GRANTS[r] <= GRANTS[role]]
