"""Fixtures of the security probe suite: one attacked system and the tally of every probe."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from security_tally import RESULTS, Tally
from security_targets import COUNTY_B, SLAUGHTER_A, Targets, build_targets, county_a_alert
from security_world import SecurityWorld

_TALLY = Tally()


@pytest.fixture(scope="session")
def tally() -> Iterator[Tally]:
    """Counts per probe class; written to bench/results/security.json (security_postgres.json
    with central on PostgreSQL) when the session ends."""
    yield _TALLY
    if os.environ.get("FSV_TEST_DATABASE", "sqlite") == "postgres":
        _TALLY.write(RESULTS.with_name("security_postgres.json"))
    else:
        _TALLY.write()


@pytest.fixture(scope="session")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecurityWorld]:
    """Real mosquitto with the shipped policy, `central-server run`, `seed-demo`, two sites."""
    system = SecurityWorld(tmp_path_factory.mktemp("security"))
    system.start()
    try:
        yield system
    except BaseException:
        print(system.log_tail())
        raise
    finally:
        system.stop()


@pytest.fixture(scope="session")
def targets(world: SecurityWorld) -> Targets:
    """County B's objects (and county A's own alert), made once for every probe."""
    return build_targets(world, COUNTY_B, county_a_alert(world))


@pytest.fixture(scope="session")
def enterprise_targets(world: SecurityWorld, targets: Targets) -> Targets:
    """The objects of county A's other enterprise (a slaughterhouse)."""
    return build_targets(world, SLAUGHTER_A, targets.a_alert)
