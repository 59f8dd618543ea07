"""The `edge-agent` command: run, check-config, discover, probe, storage, verify."""

from __future__ import annotations

import argparse
import logging
import sys
import time

from edge_agent import __version__
from edge_agent.config import EdgeConfig, load_config
from edge_agent.errors import ConfigError, EdgeAgentError

DEFAULT_CONFIG = "/etc/edge-agent/edge.yaml"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every sub-command."""
    parser = argparse.ArgumentParser(
        prog="edge-agent",
        description="Food-safety video edge agent: records key-station cameras with legal "
        "retention, detects violations and reports to central.",
    )
    parser.add_argument("--version", action="version", version=f"edge-agent {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("run", help="run the agent until SIGTERM/SIGINT")
    p.add_argument("-c", "--config", default=DEFAULT_CONFIG, help="YAML configuration file")

    p = sub.add_parser(
        "check-config",
        help="validate a configuration file, list every error and what each rule can see",
    )
    p.add_argument("config", help="YAML configuration file")

    p = sub.add_parser("discover", help="find ONVIF cameras on the local network (WS-Discovery)")
    p.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for answers")
    p.add_argument(
        "--interface",
        default=None,
        help="IPv4 address of the interface to send the multicast probe from",
    )

    p = sub.add_parser("probe", help="read an ONVIF camera's profiles and print a camera block")
    p.add_argument("--host", required=True, help="camera address")
    p.add_argument("--port", type=int, default=80, help="ONVIF HTTP port")
    p.add_argument("--user", default="admin", help="ONVIF user name")
    p.add_argument(
        "--password-env",
        default="ONVIF_PASSWORD",
        help="environment variable holding the password (never on the command line)",
    )
    p.add_argument("--id", dest="camera_id", default=None, help="camera id for the block")
    p.add_argument("--station", default="entry_inspection", help="station for the block")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the camera")

    p = sub.add_parser("storage", help="per-camera days held, days forecast, bytes and gaps")
    p.add_argument("-c", "--config", default=DEFAULT_CONFIG, help="YAML configuration file")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")

    p = sub.add_parser(
        "verify",
        help="rehash segment files against the index and its SHA-256 chain; "
        "one line per problem, exit 1 if any",
    )
    p.add_argument("-c", "--config", default=DEFAULT_CONFIG, help="YAML configuration file")
    p.add_argument("--camera", default=None, help="only this camera (default: every camera)")
    p.add_argument(
        "--from", dest="start", default=None, help="ISO 8601 time (UTC unless zoned) to start at"
    )
    p.add_argument("--to", dest="end", default=None, help="ISO 8601 time to stop at")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `edge-agent`; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except ConfigError as e:
        print(e, file=sys.stderr)
        return 2
    except EdgeAgentError as e:
        print(f"edge-agent: {e}", file=sys.stderr)
        return 1


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "check-config":
        config = load_config(args.config)
        from edge_agent.detection.presets import check_detection

        if rule_problems := check_detection(config):  # station presets + camera overrides
            raise ConfigError(args.config, rule_problems)
        _warn_stations(args.config, config)
        print(f"{args.config}: OK ({len(config.cameras)} cameras, site {config.site_id})")
        from edge_agent.detection.report import camera_reports, format_reports

        print("\n".join(format_reports(camera_reports(config))))
        return 0
    if args.command == "run":
        config = load_config(args.config)
        _setup_logging(config)
        logging.getLogger("edge_agent").info("edge-agent %s starting", __version__)
        from edge_agent.app import run

        return run(config)
    if args.command == "storage":
        from edge_agent.retention.report import print_storage_report

        return print_storage_report(load_config(args.config), as_json=args.json)
    if args.command == "verify":
        from edge_agent.recording.verify import parse_time, print_verify

        try:
            start = None if args.start is None else parse_time(args.start)
            end = None if args.end is None else parse_time(args.end)
        except ValueError as e:
            raise EdgeAgentError(str(e)) from e
        return print_verify(load_config(args.config), args.camera, start, end)
    if args.command == "discover":
        from edge_agent.onvif.discovery import print_discovered

        return print_discovered(timeout=args.timeout, interface=args.interface)
    if args.command == "probe":
        from edge_agent.onvif.probe import print_probe

        return print_probe(
            host=args.host,
            port=args.port,
            user=args.user,
            password_env=args.password_env,
            camera_id=args.camera_id,
            station=args.station,
            timeout=args.timeout,
        )
    raise AssertionError(args.command)


def _warn_stations(path: str, config: EdgeConfig) -> None:
    """Warn (on stderr, still OK) about cameras where nothing would ever be detected."""
    from edge_agent.config import line_of
    from edge_agent.detection.presets import station_warnings

    warnings = station_warnings(config)
    if not warnings:
        return
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for index, warning in warnings:
        line = line_of(text, ["cameras", index, "station"])
        print(f"warning: {path}:{line}: {warning}", file=sys.stderr)


def _setup_logging(config: EdgeConfig) -> None:
    logging.basicConfig(
        level=config.log_level,
        format="%(asctime)s %(levelname)s [%(threadName)s] %(name)s: %(message)s",
    )
    logging.Formatter.converter = time.gmtime
