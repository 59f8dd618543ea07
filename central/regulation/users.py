"""Users and their scope; the Session they act in (made by `sessions.py`)."""

from __future__ import annotations

import functools
import json
import re
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any

from central.errors import AuthError, ConflictError, InvalidInputError, NotFoundError
from central.regulation.passwords import (
    check_password_strength,
    hash_password,
    verify_password,
)
from central.regulation.roles import ROLE_LEVEL, Role, grantable_roles
from central.regulation.scope import Scope, in_scope, scope_filter
from central.schema import LockedDb

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{1,63}$")


def _sign_out_everywhere(db: Any, user_id: int) -> None:
    """End a user's sessions and API tokens and forget their devices' push subscriptions: a
    lost phone stops hearing of alerts with its sessions; the user subscribes again."""
    db.execute("delete from user_sessions where user_id = ?", [user_id])
    db.execute("delete from push_subscriptions where user_id = ?", [user_id])


# A dummy hash checked when the user name is unknown, so a wrong name costs as much time as
# a wrong password and the response time does not reveal which names exist.
@functools.cache
def _dummy_hash() -> str:
    return hash_password("not-a-real-password-0")


@dataclass(frozen=True)
class User:
    """A signed-in user as handlers see it."""

    id: int
    username: str
    display_name: str
    role: Role
    org_id: int | None
    org_path: str | None
    push_filters: dict[str, Any] = field(default_factory=dict)
    disabled: bool = False

    @property
    def scope(self) -> Scope:
        """The subtree this user may see."""
        if self.role is Role.ADMIN and self.org_path is None:
            return Scope.everything()
        return Scope(self.org_path) if self.org_path else Scope.nothing()

    def public(self) -> dict[str, Any]:
        """The user as the API shows it (no secrets)."""
        return {
            "id": self.id,
            "username": self.username,
            "display_name": self.display_name,
            "role": self.role.value,
            "org_id": self.org_id,
            "org_path": self.org_path,
            "push_filters": self.push_filters,
            "disabled": self.disabled,
        }


@dataclass(frozen=True)
class Session:
    """A live session or API token: who, which kind, its scope, the CSRF token to echo."""

    user: User
    kind: str
    csrf: str
    token_hash: str
    scope: str = "full"  # "read": GET only
    purpose: str = "session"  # "session" (login) or "token" (an API token)
    token_id: str = ""
    label: str = ""


def user_from_row(row: dict[str, Any]) -> User:
    """A User from a `users` row."""
    return User(
        id=row["id"],
        username=row["username"],
        display_name=row["display_name"] or row["username"],
        role=Role(row["role"]),
        org_id=row["org_id"],
        org_path=row["org_path"],
        push_filters=json.loads(row["push_filters"] or "{}"),
        disabled=bool(row.get("disabled")),
    )


def _check_grant(granted_by: Role | None, role: Role) -> None:
    """InvalidInputError unless a user of `granted_by` may hand out `role`."""
    if granted_by is not None and role not in grantable_roles(granted_by):
        raise InvalidInputError(f"role: a {granted_by.value} may not grant {role.value}")


class UserStore:
    """Users and sessions in central's database."""

    def __init__(self, ldb: LockedDb) -> None:
        self._ldb = ldb

    def create_user(
        self,
        scope: Scope,
        *,
        username: str,
        password: str,
        role: str,
        org_id: int | None,
        display_name: str = "",
        granted_by: Role | None = None,
    ) -> User:
        """Create a user attached to an organisation within `scope`.

        `granted_by` is the role of the user creating the account (None: the system itself,
        e.g. the demo seed); the new role must be one that role may grant.
        """
        if not USERNAME.match(username):
            raise InvalidInputError("username: 2-64 letters, digits, '_', '.', '@' or '-'")
        try:
            the_role = Role(role)
        except ValueError as e:
            raise InvalidInputError(f"role: {e}") from e
        try:
            check_password_strength(password)
        except ValueError as e:
            raise InvalidInputError(f"password: {e}") from e
        _check_grant(granted_by, the_role)
        org_path = self._check_org(scope, the_role, org_id)
        row = {
            "username": username,
            "display_name": display_name or username,
            "role": the_role.value,
            "org_id": org_id,
            "org_path": org_path,
            "password_hash": hash_password(password),
            "push_filters": "{}",
            "disabled": 0,
            "created_at": time.time(),
        }
        with self._ldb.transaction() as db:
            try:
                user_id = db.table("users").insert(row).last_pk
            except sqlite3.IntegrityError as e:
                raise ConflictError(f"username: user {username!r} already exists") from e
        return self.get_user(Scope.everything(), int(str(user_id)))

    def _check_org(self, scope: Scope, role: Role, org_id: int | None) -> str | None:
        want = ROLE_LEVEL[role]
        if org_id is None:
            if role is Role.ADMIN and scope.root is None:
                return None
            raise InvalidInputError(f"org_id: a {role.value} user needs an organisation")
        with self._ldb.lock:
            rows = list(self._ldb.db.query("select * from orgs where id = ?", [org_id]))
        if not rows or not in_scope(scope, rows[0]["org_path"]):
            raise NotFoundError(f"organisation {org_id} not found")
        if want is not None and rows[0]["level"] != want:
            raise InvalidInputError(
                f"org_id: a {role.value} belongs to a {want}, not a {rows[0]['level']}"
            )
        return str(rows[0]["org_path"])

    def get_user(self, scope: Scope, user_id: int) -> User:
        """One user; NotFoundError outside `scope` (admins without an org are seen by admins)."""
        with self._ldb.lock:
            rows = list(self._ldb.db.query("select * from users where id = ?", [user_id]))
        if not rows or not in_scope(scope, rows[0]["org_path"]):
            raise NotFoundError(f"user {user_id} not found")
        return user_from_row(dict(rows[0]))

    def list_users(self, scope: Scope) -> list[User]:
        """Users in scope."""
        where, args = scope_filter(scope)
        if scope.root is None:
            where = "1 = 1"
        with self._ldb.lock:
            rows = self._ldb.db.query(f"select * from users where {where} order by id", args)
            return [user_from_row(dict(r)) for r in rows]

    def update_user(
        self,
        scope: Scope,
        user_id: int,
        *,
        granted_by: Role,
        display_name: str | None = None,
        role: str | None = None,
        org_id: int | None = None,
        move_org: bool = False,
    ) -> User:
        """Change a user's shown name, role and/or organisation (`move_org`: org_id given).

        The target must lie in `scope`, the new role must be one `granted_by` may grant and
        the organisation must lie in `scope` at the level the role needs. A change of role or
        organisation ends the user's sessions.
        """
        current = self.get_user(scope, user_id)
        changes: dict[str, Any] = {}
        if display_name is not None:
            if not display_name.strip():
                raise InvalidInputError("display_name: must not be empty")
            changes["display_name"] = display_name.strip()
        if role is not None or move_org:
            try:
                the_role = Role(role) if role is not None else current.role
            except ValueError as e:
                raise InvalidInputError(f"role: {e}") from e
            _check_grant(granted_by, the_role)
            new_org = org_id if move_org else current.org_id
            changes["role"] = the_role.value
            changes["org_id"] = new_org
            changes["org_path"] = self._check_org(scope, the_role, new_org)
        if changes:
            with self._ldb.transaction() as db:
                db.table("users").update(user_id, changes)
                if (
                    changes.get("org_path", current.org_path) != current.org_path
                    or changes.get("role", current.role.value) != current.role.value
                ):
                    # A new role or place: sessions and tokens of the old one end (their live
                    # sockets close at the next session check) and the user signs in again.
                    _sign_out_everywhere(db, user_id)
        return self.get_user(scope, user_id)

    def set_password(self, scope: Scope, user_id: int, password: str) -> None:
        """Replace a user's password, end every session of theirs and forget their devices."""
        try:
            check_password_strength(password)
        except ValueError as e:
            raise InvalidInputError(f"password: {e}") from e
        self.get_user(scope, user_id)
        with self._ldb.transaction() as db:
            db.table("users").update(user_id, {"password_hash": hash_password(password)})
            _sign_out_everywhere(db, user_id)

    def set_disabled(self, scope: Scope, user_id: int, disabled: bool) -> None:
        """Disable (and sign out everywhere) or re-enable a user."""
        self.get_user(scope, user_id)
        with self._ldb.transaction() as db:
            db.table("users").update(user_id, {"disabled": int(disabled)})
            if disabled:
                _sign_out_everywhere(db, user_id)

    def set_push_filters(self, user_id: int, filters: dict[str, Any]) -> None:
        """Store which alerts a user wants pushed (validated by the caller)."""
        with self._ldb.transaction() as db:
            db.table("users").update(user_id, {"push_filters": json.dumps(filters)})

    def authenticate(self, username: str, password: str) -> User:
        """The user with these credentials; AuthError otherwise (same cost either way)."""
        with self._ldb.lock:
            rows = list(self._ldb.db.query("select * from users where username = ?", [username]))
        row = dict(rows[0]) if rows else None
        ok = verify_password(password, row["password_hash"] if row else _dummy_hash())
        if row is None or not ok or row["disabled"]:
            raise AuthError("wrong user name or password")
        return user_from_row(row)
