"""The one place that limits what a user sees to their subtree of the organisation tree.

Every organisation has a materialised path such as ``/1/4/9/`` (its ancestors' ids and its
own). Sites, cameras, alerts and users carry the path of the organisation they belong to, so
"is this in my subtree?" is a prefix test, in Python and in SQL alike. Handlers never write
their own WHERE clause for scope: they call :func:`scope_filter` or :func:`in_scope`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_PATH = re.compile(r"^/(?:\d+/)*$")


@dataclass(frozen=True)
class Scope:
    """The subtree a caller may see: ``root`` is an org path, ``None`` means the whole tree."""

    root: str | None

    def __post_init__(self) -> None:
        if self.root is not None and not _PATH.match(self.root):
            raise ValueError(f"not an organisation path: {self.root!r}")

    @classmethod
    def everything(cls) -> Scope:
        """The scope of an administrator: the whole tree."""
        return cls(None)

    @classmethod
    def nothing(cls) -> Scope:
        """A scope that matches no organisation (path ``/`` has no ids, nothing starts below)."""
        return cls("/0/")


def in_scope(scope: Scope, org_path: str | None) -> bool:
    """True if an object whose organisation path is `org_path` lies in the scope's subtree."""
    if scope.root is None:
        return True
    if not org_path:
        # Objects attached to no organisation (an unassigned site) belong to admins only.
        return False
    return org_path.startswith(scope.root)


def scope_filter(
    scope: Scope, column: str = "org_path", *, indexed: bool = True
) -> tuple[str, list[str]]:
    """A SQL condition and its parameters keeping rows whose `column` lies in the scope.

    `column` is a trusted identifier chosen by our own code (never user input); the prefix
    itself always travels as a parameter. With `indexed=False` the condition is written so
    that no index on `column` serves it: for a query another condition narrows better (a
    city's scope is every row; an hour of them is few), so the planner takes that one's.
    """
    if not re.match(r"^[A-Za-z_][A-Za-z0-9_.]*$", column):
        raise ValueError(f"not a column name: {column!r}")
    if scope.root is None:
        return "1 = 1", []
    # A range instead of a prefix test, so an index on `column` serves it: every path that
    # starts with the root (which ends in "/") sorts below the root with "/" raised by one.
    upper = scope.root[:-1] + chr(ord(scope.root[-1]) + 1)
    value = column if indexed else f"({column} || '')"
    return f"({value} >= ? and {value} < ?)", [scope.root, upper]


def ancestors(org_path: str) -> list[str]:
    """Paths of an organisation and every ancestor, root first: ``/1/4/`` -> ``/1/``, ``/1/4/``."""
    ids = [p for p in org_path.split("/") if p]
    return ["/" + "/".join(ids[: i + 1]) + "/" for i in range(len(ids))]
