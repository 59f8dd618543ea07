"""Per-site broker accounts: the mosquitto password file, the ACL, and the edge's enrolment."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

from central.config import BrokerAdminConfig
from central.errors import BrokerAdminError
from fsv_common.files import write_whole
from fsv_contract import topics
from fsv_contract.errors import InvalidTopic

ACL_TEMPLATE = """\
# Managed by `central-server add-site`; edits are overwritten.
# Every site logs in with its site id as user name (%u): it may publish only under
# fsv/v1/<its id>/ and read only its own commands.
pattern write fsv/v1/%u/agent/state
pattern write fsv/v1/%u/agent/heartbeat
pattern write fsv/v1/%u/agent/event
pattern write fsv/v1/%u/agent/anchor
pattern write fsv/v1/%u/camera/+/state
pattern write fsv/v1/%u/camera/+/event
pattern write fsv/v1/%u/camera/+/live
pattern write fsv/v1/%u/reply/+
pattern read fsv/v1/%u/cmd/+

# Central reads what every site publishes and sends the commands.
user {central}
topic read fsv/v1/+/agent/+
topic read fsv/v1/+/camera/+/+
topic read fsv/v1/+/reply/+
topic write fsv/v1/+/cmd/+

# Central's live-lane connection (same password) reads only the live lane of the events.
user {central_live}
topic read fsv/v1/+/camera/+/live

# The command line's short connections (same password) only send commands: a client id is
# its user name, so with central's own name they would take over central's session.
user {central_cli}
topic write fsv/v1/+/cmd/+
{nodes}"""

# With several nodes each node logs in as {central}@{node} (and {central}@{node}.live), so
# the broker's use_username_as_clientid gives every node a session of its own.
NODE_TEMPLATE = """
# Central node {node} (same password): what central reads and sends, on its own session.
user {main}
topic read fsv/v1/+/agent/+
topic read fsv/v1/+/camera/+/+
topic read fsv/v1/+/reply/+
topic write fsv/v1/+/cmd/+
user {live}
topic read fsv/v1/+/camera/+/live
"""

NODE_ID = re.compile(r"[A-Za-z0-9_-]{1,20}")


def live_username(central_username: str) -> str:
    """The broker account of central's live-lane connection ('.' is never in a site id)."""
    return f"{central_username}.live"


def cli_username(central_username: str) -> str:
    """The broker account of the command line's connections (`model rollout`)."""
    return f"{central_username}.cli"


def node_username(central_username: str, node: str) -> str:
    """The broker account of one central node ('@' is never in a site id)."""
    return f"{central_username}@{node}"


def central_passwords(
    central_username: str, password: str, nodes: Iterable[str] = ()
) -> dict[str, str]:
    """Central's broker accounts (main, live lane, command line, and the main and live-lane
    accounts of each of `nodes`), all with central's password."""
    accounts = {
        central_username: password,
        live_username(central_username): password,
        cli_username(central_username): password,
    }
    for node in nodes:
        if not NODE_ID.fullmatch(node):
            raise BrokerAdminError(f"not a node id: {node!r}")
        main = node_username(central_username, node)
        accounts[main] = accounts[live_username(main)] = password
    return accounts


def is_central_account(central_username: str, username: str) -> bool:
    """Whether `username` is one of central's broker accounts (never a site's)."""
    return username == central_username or username.startswith(
        (f"{central_username}.", f"{central_username}@")
    )


def node_accounts(password_file: Path, central_username: str) -> list[str]:
    """The node ids that have a broker account in the password file, sorted."""
    try:
        lines = password_file.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    prefix = f"{central_username}@"
    users = (line.split(":", 1)[0] for line in lines if ":" in line)
    nodes = {u.removeprefix(prefix) for u in users if u.startswith(prefix)}
    return sorted(n for n in nodes if NODE_ID.fullmatch(n))


@dataclass(frozen=True)
class SiteCredentials:
    """A site's broker login (the user name is the site id)."""

    site: str
    password: str

    def __repr__(self) -> str:
        return f"SiteCredentials(site={self.site!r}, password='***')"


def render_acl(central_username: str, nodes: Iterable[str] = ()) -> str:
    """The ACL file's text, with central's rights for the accounts of `nodes`."""
    blocks = []
    for node in nodes:
        main = node_username(central_username, node)
        blocks.append(NODE_TEMPLATE.format(node=node, main=main, live=live_username(main)))
    return ACL_TEMPLATE.format(
        central=central_username,
        central_live=live_username(central_username),
        central_cli=cli_username(central_username),
        nodes="".join(blocks),
    )


def write_acl(broker: BrokerAdminConfig, central_username: str) -> None:
    """Write the ACL file atomically (readable by the broker only).

    The nodes' accounts are those of the password file (made by `init-broker --node`), so
    a rewrite by `add-site` or `import` keeps them.
    """
    nodes = node_accounts(broker.password_file, central_username)
    write_private_file(broker.acl_file, render_acl(central_username, nodes))


def issue_site_credentials(
    broker: BrokerAdminConfig, site: str, central_username: str
) -> SiteCredentials:
    """Create or reset a site's login with a fresh random password; rewrite the ACL."""
    try:
        topics.check_level(site, "site id")
    except InvalidTopic as e:
        raise BrokerAdminError(str(e)) from e
    if is_central_account(central_username, site):
        raise BrokerAdminError(f"{site!r} is central's own account, not a site")
    password = secrets.token_urlsafe(24)
    set_password(broker, site, password)
    write_acl(broker, central_username)
    reload_broker(broker)
    return SiteCredentials(site, password)


def set_password(broker: BrokerAdminConfig, username: str, password: str) -> None:
    """Create or change one account's password in the broker's password file."""
    if not broker.password_file.exists():
        write_private_file(broker.password_file, "")
    # The password goes through stdin (twice, as the tool asks), never the command line.
    try:
        done = subprocess.run(
            [broker.mosquitto_passwd, str(broker.password_file), username],
            input=f"{password}\n{password}\n",
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise BrokerAdminError(f"cannot run {broker.mosquitto_passwd}: {e}") from e
    if done.returncode != 0:
        raise BrokerAdminError(f"mosquitto_passwd failed: {done.stderr.strip() or done.stdout}")


# mosquitto 2's password hash: PBKDF2-HMAC-SHA512, 12-byte salt, 101 iterations ("$7$").
PBKDF2_ITERATIONS = 101


def mosquitto_hash(password: str, salt: bytes | None = None) -> str:
    """A password file hash as `mosquitto_passwd` writes it (`$7$iterations$salt$hash`)."""
    salt = secrets.token_bytes(12) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, PBKDF2_ITERATIONS)
    b64 = base64.b64encode
    return f"$7${PBKDF2_ITERATIONS}${b64(salt).decode()}${b64(digest).decode()}"


def set_passwords(broker: BrokerAdminConfig, passwords: dict[str, str]) -> None:
    """Create or change many accounts in one rewrite of the password file (no reload).

    For bulk registration: hundreds of accounts cost one file write instead of one
    `mosquitto_passwd` run each. Other accounts' lines are kept as they are.
    """
    for username in passwords:
        if not username or ":" in username or "\n" in username:
            raise BrokerAdminError(f"not a valid broker user name: {username!r}")
    try:
        lines = broker.password_file.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        lines = []
    kept = [ln for ln in lines if ln and ln.split(":", 1)[0] not in passwords]
    added = [f"{user}:{mosquitto_hash(pw)}" for user, pw in passwords.items()]
    write_private_file(broker.password_file, "\n".join([*kept, *added]) + "\n")


def reload_broker(broker: BrokerAdminConfig) -> bool:
    """Run the configured reload command (mosquitto re-reads passwords and ACL on SIGHUP)."""
    if not broker.reload_command:
        return False
    try:
        done = subprocess.run(
            broker.reload_command, capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise BrokerAdminError(f"cannot reload the broker: {e}") from e
    if done.returncode != 0:
        raise BrokerAdminError(f"broker reload failed: {done.stderr.strip() or done.stdout}")
    return True


def enrolment_parts(broker: BrokerAdminConfig, creds: SiteCredentials) -> tuple[str, str]:
    """The edge config section (YAML) and the credentials file entry (YAML, secret)."""
    mqtt: dict[str, object] = {"host": broker.public_host, "port": broker.public_port}
    mqtt["tls"] = {"ca_file": str(broker.ca_file)} if broker.ca_file else {}
    mqtt["credential"] = "mqtt"
    config = yaml.safe_dump(
        {"site_id": creds.site, "mqtt": mqtt, "central_url": broker.central_url},
        sort_keys=False,
    )
    secret = yaml.safe_dump(
        {"mqtt": {"username": creds.site, "password": creds.password}}, sort_keys=False
    )
    return config, secret


def enrolment(broker: BrokerAdminConfig, creds: SiteCredentials) -> str:
    """What to paste on the edge: the config section and the credentials file entry."""
    config, secret = enrolment_parts(broker, creds)
    return (
        f"# add to the edge config (site_id: {creds.site}):\n{config}\n"
        "# add to the edge's credentials file (e.g. /etc/edge-agent/camera-credentials.yaml),"
        " or set EDGE_CRED_MQTT_USER / EDGE_CRED_MQTT_PASSWORD:\n"
        f"{secret}"
    )


def write_enrolment_files(
    broker: BrokerAdminConfig, creds: SiteCredentials, out: Path
) -> tuple[Path, Path]:
    """The edge box's enrolment in `out`: SITE.edge.yaml and SITE.credentials.yaml (0600)."""
    section, secret = enrolment_parts(broker, creds)
    out.mkdir(parents=True, exist_ok=True)
    edge_file = out / f"{creds.site}.edge.yaml"
    secret_file = out / f"{creds.site}.credentials.yaml"
    write_private_file(edge_file, section)
    write_whole(secret_file, secret.encode("utf-8"), mode=0o600)
    return edge_file, secret_file


def write_private_file(path: Path, text: str) -> None:
    """Replace a file atomically with `text`; keeps an existing file's owner and mode.

    A new file gets mode 0640, so the broker's group can read what root writes.
    """
    try:
        st = path.stat()
        mode, owner = st.st_mode & 0o777, (st.st_uid, st.st_gid)
    except FileNotFoundError:
        mode, owner = 0o640, None
    write_whole(path, text.encode("utf-8"), mode=mode, owner=owner)
