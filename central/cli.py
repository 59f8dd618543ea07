"""The `central-server` command: run, check-config, add-site, import, init-broker, status."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path

from central import __version__
from central.archive import plan as archive_plan
from central.cli_regulator import COMMANDS as REGULATOR_COMMANDS
from central.cli_regulator import add_parsers as add_regulator_parsers
from central.config import CentralConfig, load_config
from central.errors import CentralError, ConfigError
from central.integrity import cli as integrity_cli
from central.models import cli as models_cli
from central.video import verify as video_verify

DEFAULT_CONFIG = "/etc/central/central.yaml"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = argparse.ArgumentParser(
        prog="central-server",
        description="Food-safety video central server: ingest, organisation tree, video relay.",
    )
    parser.add_argument("--version", action="version", version=f"central-server {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="run the server (MQTT ingest and HTTP API) until SIGTERM")
    p.add_argument("-c", "--config", default=DEFAULT_CONFIG, help="YAML configuration file")

    p = sub.add_parser("check-config", help="validate a configuration file and list every error")
    p.add_argument("config", help="YAML configuration file")

    p = sub.add_parser(
        "add-site",
        help="issue (or reset) a site's broker credentials and print the edge enrolment",
    )
    p.add_argument("site", help="site id (lower-case letters, digits, '_' and '-')")
    p.add_argument("-c", "--config", default=DEFAULT_CONFIG, help="YAML configuration file")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="also write the enrolment files for the edge box into this folder: "
        "SITE.edge.yaml (config sections) and SITE.credentials.yaml (mode 0600)",
    )

    p = sub.add_parser(
        "init-broker",
        help="write the broker ACL and give central's own accounts a password "
        "(stored in mqtt.password_file)",
    )
    p.add_argument("-c", "--config", default=DEFAULT_CONFIG, help="YAML configuration file")
    p.add_argument(
        "--node",
        action="append",
        default=[],
        metavar="NODE_ID",
        help="also make the broker accounts of this central node (USER@NODE_ID, repeat for "
        "each node; the config's own cluster.node_id is included with several nodes, and "
        "nodes already in the password file are kept)",
    )

    p = sub.add_parser(
        "import",
        help="register many sites from a CSV (org tree, sites, broker credentials, enrolment "
        "files) with one broker reload",
    )
    p.add_argument("csv", type=Path, help="province,city,county,enterprise,enterprise_type,"
                   "site_id[,site_name,address,licence_no,contact,phone]")  # fmt: skip
    p.add_argument("-c", "--config", default=DEFAULT_CONFIG, help="YAML configuration file")
    p.add_argument("--out", type=Path, help="write each new site's enrolment files here "
                   "(SITE.edge.yaml, SITE.credentials.yaml mode 0600); needs `broker`")  # fmt: skip

    p = sub.add_parser("status", help="agents online, cameras, last heartbeats, ingest counters")
    p.add_argument("-c", "--config", default=DEFAULT_CONFIG, help="YAML configuration file")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    add_regulator_parsers(sub)
    video_verify.add_parser(sub)
    integrity_cli.add_parser(sub)
    archive_plan.add_parser(sub)
    models_cli.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `central-server`; returns the exit code."""
    args = build_parser().parse_args(argv)
    commands: dict[str, Callable[[argparse.Namespace], int]] = {
        "run": cmd_run,
        "check-config": cmd_check_config,
        "add-site": cmd_add_site,
        "init-broker": cmd_init_broker,
        "status": cmd_status,
        "import": cmd_import,
        **REGULATOR_COMMANDS,
        "verify-clip": video_verify.run,
        "audit": integrity_cli.run,
        "archive": archive_plan.run,
        **models_cli.COMMANDS,
    }
    try:
        return commands[args.command](args)
    except ConfigError as e:
        print(e, file=sys.stderr)
        return 2
    except CentralError as e:
        print(f"central-server: {e}", file=sys.stderr)
        return 1


def cmd_run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM/SIGINT."""
    from aiohttp import web

    from central.app import create_app

    config = load_config(args.config)
    _setup_logging(config)
    web.run_app(
        create_app(config),
        host=config.http.host,
        port=config.http.port,
        print=None,
        handle_signals=True,
    )
    return 0


def cmd_check_config(args: argparse.Namespace) -> int:
    """Validate a file; exit 2 with every problem listed if it is invalid."""
    config = load_config(args.config)
    broker = "configured" if config.broker else "not configured (add-site unavailable)"
    print(f"{args.config}: OK (data in {config.data_dir}, broker admin {broker})")
    return 0


def cmd_add_site(args: argparse.Namespace) -> int:
    """Issue a site's credentials and print them with the edge's enrolment snippet."""
    from central.ingest.accounts import enrolment, issue_site_credentials, write_enrolment_files

    config = load_config(args.config)
    if config.broker is None:
        raise ConfigError(f"{args.config}: add-site needs the `broker` section")
    creds = issue_site_credentials(config.broker, args.site, config.mqtt.username)
    print(f"site {creds.site}: broker user {creds.site}, password {creds.password}")
    print("(shown once; run add-site again to reset it)\n")
    print(enrolment(config.broker, creds))
    if args.out is not None:
        edge_file, secret_file = write_enrolment_files(config.broker, creds, args.out)
        print(f"enrolment written: {edge_file} and {secret_file} (copy both to the edge box)")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """Register the sites of a CSV; credentials in one password file write, one reload."""
    import secrets

    from central.ingest.accounts import (
        SiteCredentials,
        reload_broker,
        set_passwords,
        write_acl,
        write_enrolment_files,
    )
    from central.regulation.org import OrgStore
    from central.regulation.site_import import import_sites, parse_sites_csv
    from central.schema import apply_migrations
    from central.storage.db import CentralDatabase

    started = time.monotonic()
    config = load_config(args.config)
    if args.out is not None and config.broker is None:
        raise ConfigError(f"{args.config}: --out needs the `broker` section")
    try:
        text = args.csv.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read {args.csv}: {e}") from e
    rows = parse_sites_csv(text)
    database = CentralDatabase(config.database_url)
    try:
        apply_migrations(database)
        result = import_sites(database, OrgStore(database), rows)
    finally:
        database.close()
    print(
        f"{len(result.sites_created)} site(s) registered, {result.orgs_created} organisation(s) "
        f"created, {len(result.sites_existing)} site(s) already there"
    )
    if config.broker is None or not result.sites_created:
        if config.broker is None:
            print("no `broker` section: broker credentials not issued")
        return 0
    creds = [SiteCredentials(s, secrets.token_urlsafe(24)) for s in result.sites_created]
    set_passwords(config.broker, {c.site: c.password for c in creds})
    write_acl(config.broker, config.mqtt.username)
    reloaded = reload_broker(config.broker)
    if args.out is not None:
        for c in creds:
            write_enrolment_files(config.broker, c, args.out)
        print(f"enrolment files of {len(creds)} site(s) written to {args.out}")
    else:
        print("credentials issued but not shown: use --out to get the enrolment files")
    print(f"broker {'reloaded once' if reloaded else 'not reloaded (no reload_command)'}; "
          f"{time.monotonic() - started:.1f} s")  # fmt: skip
    return 0


def cmd_init_broker(args: argparse.Namespace) -> int:
    """Write the ACL and create central's own broker account (password to a private file)."""
    import secrets

    from central.ingest.accounts import (
        central_passwords,
        node_accounts,
        node_username,
        reload_broker,
        set_passwords,
        write_acl,
        write_private_file,
    )

    config = load_config(args.config)
    if config.broker is None or config.mqtt.password_file is None:
        raise ConfigError(f"{args.config}: init-broker needs `broker` and `mqtt.password_file`")
    user = config.mqtt.username
    # Every account of central gets the new password: nodes already there stay usable.
    nodes = set(args.node) | set(node_accounts(config.broker.password_file, user))
    if config.cluster.shared and config.cluster.node_id is not None:
        nodes.add(config.cluster.node_id)
    password = secrets.token_urlsafe(24)
    set_passwords(config.broker, central_passwords(user, password, sorted(nodes)))
    write_private_file(config.mqtt.password_file, password + "\n")
    write_acl(config.broker, user)
    reloaded = reload_broker(config.broker)
    where = config.mqtt.password_file
    print(f"central account {user!r} ready; password in {where}")
    if nodes:
        names = ", ".join(node_username(user, n) for n in sorted(nodes))
        print(f"node accounts (same password): {names}")
    print(f"ACL written to {config.broker.acl_file}" + (", broker reloaded" if reloaded else ""))
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Print what ingest knows: agents, cameras, ingest counters."""
    from central.ingest.store import IngestStore
    from central.storage.db import CentralDatabase

    config = load_config(args.config)
    database = CentralDatabase(config.database_url)
    try:
        store = IngestStore(database)
        stats, agents, cameras = store.stats(), store.agents(), store.cameras()
    finally:
        database.close()
    if args.json:
        report = {"ingest": stats, "agents": agents, "cameras": cameras}
        print(json.dumps(report, indent=2, default=str))
        return 0
    print("ingest: " + ", ".join(f"{k} {v}" for k, v in stats.items()))
    now = time.time()
    for agent in agents:
        beat = agent["last_heartbeat_at"]
        age = f"{now - beat:.0f} s ago" if beat else "never"
        print(f"site {agent['site']}: {agent['state'] or 'unknown'}, last heartbeat {age}")
    for cam in cameras:
        print(f"  {cam['site']}/{cam['camera']}: {cam['state']} ({cam['reason'] or '-'})")
    return 0


def _setup_logging(config: CentralConfig) -> None:
    logging.basicConfig(
        level=config.log_level,
        format="%(asctime)s %(levelname)s [%(threadName)s] %(name)s: %(message)s",
    )
    logging.Formatter.converter = time.gmtime
