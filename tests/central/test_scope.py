"""The one scope filter: Python and SQL agree on what lies in a subtree."""

import pytest

from central.regulation.scope import Scope, ancestors, in_scope, scope_filter
from central.storage.db import CentralDatabase


def test_subtree_prefix_not_sibling_with_same_digits() -> None:
    county = Scope("/1/2/")
    assert in_scope(county, "/1/2/")
    assert in_scope(county, "/1/2/7/")
    assert not in_scope(county, "/1/22/")
    assert not in_scope(county, "/1/")
    assert not in_scope(county, None)
    assert in_scope(Scope.everything(), None)
    assert not in_scope(Scope.nothing(), "/1/")


@pytest.mark.databases("sqlite", "postgres")
def test_sql_filter_matches_python(central_db_url: str | None) -> None:
    database = CentralDatabase(central_db_url or ":memory:")
    paths = ["/1/", "/1/2/", "/1/2/7/", "/1/22/", "/3/", "/", "/1/2~", "/1/2/\u00e9/"]
    with database.transaction() as db:
        db.execute("create table t (org_path text)")
        db.conn.executemany("insert into t values (?)", [(p,) for p in paths])
    with database.read() as db:
        for scope in (Scope("/1/2/"), Scope("/1/"), Scope.everything(), Scope.nothing()):
            where, args = scope_filter(scope)
            got = {r[0] for r in db.execute(f"select org_path from t where {where}", args)}
            assert got == {p for p in paths if in_scope(scope, p)}
    database.close()


def test_rejects_bad_paths_and_columns() -> None:
    with pytest.raises(ValueError):
        Scope("/1/x/")
    with pytest.raises(ValueError):
        scope_filter(Scope("/1/"), "org_path; drop table t")
    assert ancestors("/1/4/9/") == ["/1/", "/1/4/", "/1/4/9/"]
