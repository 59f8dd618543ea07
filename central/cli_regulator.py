"""`central-server` sub-commands of the regulator side: org tree, users, demo seed, VAPID keys."""

from __future__ import annotations

import argparse
import getpass
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from central.config import load_config
from central.errors import InvalidInputError
from central.regulation.roles import Role
from central.regulation.scope import Scope
from central.services import Services, build_services

DEFAULT_CONFIG = "/etc/central/central.yaml"
PASSWORD_ENV = "FSV_USER_PASSWORD"


def add_parsers(sub: Any) -> None:
    """Add the regulator sub-commands to `central-server`'s sub-parsers."""
    org = sub.add_parser("org", help="organisation tree: add, list, add-site")
    osub = org.add_subparsers(dest="org_command", required=True, metavar="ORG_COMMAND")
    p = osub.add_parser("add", help="add a province, city, county or enterprise; prints its id")
    p.add_argument("--level", required=True, choices=["province", "city", "county", "enterprise"])
    p.add_argument("--name", required=True)
    p.add_argument("--parent", type=int, help="id of the parent organisation")
    p.add_argument("--type", dest="enterprise_type", choices=["slaughterhouse", "canteen"])
    for field in ("address", "licence-no", "contact", "phone", "public-info"):
        p.add_argument(f"--{field}", default="")
    p.add_argument("-c", "--config", default=DEFAULT_CONFIG, help="YAML configuration file")
    p = osub.add_parser("list", help="print the organisation tree with sites")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("-c", "--config", default=DEFAULT_CONFIG, help="YAML configuration file")
    p = osub.add_parser(
        "add-site", help="register an edge site under an enterprise; with a `broker` section "
        "also issue its MQTT credentials and print the enrolment",
    )  # fmt: skip
    p.add_argument("site", help="site id (lower-case letters, digits, '_' and '-')")
    p.add_argument("--org", type=int, required=True, help="enterprise id")
    p.add_argument("--name", default="", help="display name of the site")
    p.add_argument("-c", "--config", default=DEFAULT_CONFIG, help="YAML configuration file")

    for name, text in (
        ("create-admin", "create an administrator (whole tree)"),
        ("add-user", "create a user of a role attached to an organisation"),
    ):
        p = sub.add_parser(name, help=f"{text}; password from ${PASSWORD_ENV} or a prompt")
        p.add_argument("username")
        if name == "add-user":
            p.add_argument("--role", required=True, choices=[r.value for r in Role])
            p.add_argument("--org", type=int, help="organisation id (not for admins)")
        p.add_argument("--display-name", default="")
        p.add_argument("--generate", action="store_true", help="generate and print a password")
        p.add_argument("-c", "--config", default=DEFAULT_CONFIG, help="YAML configuration file")

    p = sub.add_parser("seed-demo", help="create a sample tree and one user per role "
                       "(new database only); prints the credentials")  # fmt: skip
    p.add_argument("--site", action="append", default=[], metavar="SITE=ENTERPRISE",
                   help="also register SITE under canteen_a, slaughter_a or canteen_b")  # fmt: skip
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("-c", "--config", default=DEFAULT_CONFIG, help="YAML configuration file")

    p = sub.add_parser("vapid-keys", help="generate the Web Push (VAPID) key pair")
    p.add_argument(
        "--out",
        required=True,
        help="PEM file to write (mode 0600); name it in push.vapid_private_key_file",
    )


@contextmanager
def _services(config_path: str) -> Iterator[tuple[Services, Any]]:
    from central.storage.db import CentralDatabase

    config = load_config(config_path)
    database = CentralDatabase(config.database_url)
    try:
        yield build_services(database, config.web, config.push, config.data_dir, None), config
    finally:
        database.close()


def _password(args: argparse.Namespace) -> tuple[str, bool]:
    if args.generate:
        from central.regulation.seed import demo_password

        return demo_password(), True
    if os.environ.get(PASSWORD_ENV):
        return os.environ[PASSWORD_ENV], False
    first = getpass.getpass(f"password for {args.username}: ")
    if getpass.getpass("again: ") != first:
        raise InvalidInputError("the passwords differ")
    return first, False


def cmd_org(args: argparse.Namespace) -> int:
    """`org add`, `org list`, `org add-site`."""
    with _services(args.config) as (svc, config):
        everything = Scope.everything()
        if args.org_command == "add":
            info = {k: getattr(args, k) for k in ("address", "licence_no", "contact", "phone",
                                                  "public_info")}  # fmt: skip
            org = svc.orgs.create_org(everything, args.parent, args.level, name=args.name,
                                      enterprise_type=args.enterprise_type, **info)  # fmt: skip
            print(org["id"])
        elif args.org_command == "list":
            tree, sites = svc.orgs.tree(everything), svc.orgs.list_sites(everything)
            if args.json:
                print(json.dumps({"tree": tree, "sites": sites}, ensure_ascii=False, indent=2))
            else:
                _print_tree(tree, sites, 0)
        else:
            site = svc.orgs.create_site(everything, args.org, args.site, args.name)
            print(f"site {site['id']} registered under organisation {args.org}")
            if config.broker is not None:
                from central.ingest.accounts import enrolment, issue_site_credentials

                creds = issue_site_credentials(config.broker, args.site, config.mqtt.username)
                print(f"broker user {creds.site}, password {creds.password} (shown once)\n")
                print(enrolment(config.broker, creds))
    return 0


def _print_tree(nodes: list[dict[str, Any]], sites: list[dict[str, Any]], depth: int) -> None:
    for node in nodes:
        kind = node["enterprise_type"] or node["level"]
        print(f"{'  ' * depth}{node['id']:>4} {node['name']} ({kind})")
        for site in sites:
            if site["org_id"] == node["id"]:
                print(f"{'  ' * (depth + 1)}     site {site['id']}")
        _print_tree(node["children"], sites, depth + 1)


def cmd_user(args: argparse.Namespace) -> int:
    """`create-admin` and `add-user`."""
    role = "admin" if args.command == "create-admin" else args.role
    org_id = None if args.command == "create-admin" else args.org
    password, generated = _password(args)
    with _services(args.config) as (svc, _config):
        user = svc.users.create_user(Scope.everything(), username=args.username,
                                     password=password, role=role, org_id=org_id,
                                     display_name=args.display_name)  # fmt: skip
    print(f"user {user.username} ({user.role.value}) created, id {user.id}")
    if generated:
        print(f"password: {password}")
    return 0


def cmd_seed_demo(args: argparse.Namespace) -> int:
    """Create the sample tree and print every account with its password."""
    from central.regulation.seed import seed_demo

    extra = {}
    for item in args.site:
        site, _, key = item.partition("=")
        extra[site] = key or "canteen_a"
    with _services(args.config) as (svc, _config):
        result = seed_demo(svc, extra)
    users = [u.__dict__ for u in result["users"]]
    if args.json:
        print(json.dumps({**result, "users": users}, ensure_ascii=False, indent=2))
        return 0
    print("organisations: " + ", ".join(f"{k}={v}" for k, v in result["orgs"].items()))
    print("sites: " + ", ".join(f"{k} ({v})" for k, v in result["sites"].items()))
    for u in users:
        print(f"{u['role']:<17} {u['username']:<18} {u['password']}  {u['org']}")
    return 0


def cmd_vapid_keys(args: argparse.Namespace) -> int:
    """Write a new P-256 key pair for Web Push and print the public key."""
    from py_vapid import Vapid

    from central.regulator import application_server_key

    out = Path(args.out)
    if out.exists():
        raise InvalidInputError(f"{out} exists; remove it first (subscriptions would break)")
    vapid = Vapid()
    vapid.generate_keys()
    out.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(vapid.private_pem())
    print(f"private key written to {out}; set push.vapid_private_key_file to it")
    print(f"public key (applicationServerKey): {application_server_key(vapid)}")
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "org": cmd_org,
    "create-admin": cmd_user,
    "add-user": cmd_user,
    "seed-demo": cmd_seed_demo,
    "vapid-keys": cmd_vapid_keys,
}
