"""Find ONVIF cameras on the local network with a WS-Discovery multicast Probe.

This module sends the standard ONVIF Probe itself (SOAP-over-UDP to 239.255.255.250:3702,
`IP_MULTICAST_IF` set to the chosen interface) rather than using the `WSDiscovery` package,
for two reasons found against real devices and the test emulator:

- `WSDiscovery` only probes from non-loopback interfaces (its address monitor skips
  127.0.0.0/8) and probes from every interface at once, so `--interface` cannot pick one.
- Its parser accepts only answers whose WS-Addressing Action is exactly `.../ProbeMatches`;
  devices that answer with `.../ProbeMatch` or without the `ProbeMatches` wrapper (ipycam,
  some low-cost firmwares) are silently dropped.

Answers are untrusted datagrams: they are parsed with the standard library's expat (which
limits entity expansion), any document with a DTD is dropped (SOAP forbids them), and only
answers that relate to our own Probe's MessageID are kept.
"""

from __future__ import annotations

import ipaddress
import logging
import random
import re
import selectors
import socket
import sys
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import psutil

from edge_agent.errors import OnvifError

log = logging.getLogger(__name__)

WSD_GROUP = "239.255.255.250"
WSD_PORT = 3702
# SOAP-over-UDP 1.1, appendix I: a multicast message is repeated once (MULTICAST_UDP_REPEAT)
# after a random delay between UDP_MIN_DELAY and UDP_MAX_DELAY.
_REPEAT_DELAY_S = (0.05, 0.25)
_MAX_DATAGRAM = 65535

_NS_SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
_NS_WSA = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
_NS_WSD = "http://schemas.xmlsoap.org/ws/2005/04/discovery"
_NS_DN = "http://www.onvif.org/ver10/network/wsdl"
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


@dataclass(frozen=True)
class DiscoveredDevice:
    """One device that answered the Probe."""

    endpoint: str
    """WS-Addressing endpoint reference, usually `urn:uuid:...`: stable per device."""
    address: str
    """IP address the answer came from."""
    xaddrs: tuple[str, ...]
    """Device service URLs, e.g. `http://192.168.1.64/onvif/device_service`."""
    types: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()

    def scope(self, kind: str) -> str | None:
        """Value of the first `onvif://www.onvif.org/<kind>/...` scope, URL-decoded."""
        prefix = f"onvif://www.onvif.org/{kind}/"
        for item in self.scopes:
            if item.lower().startswith(prefix):
                return unquote(item[len(prefix) :])
        return None

    def probe_target(self) -> tuple[str, int]:
        """Host and port for `edge-agent probe`: from the first XAddr, else the sender."""
        for xaddr in self.xaddrs:
            parts = urlsplit(xaddr)
            if parts.hostname:
                try:
                    port = parts.port
                except ValueError:
                    continue
                return parts.hostname, port or (443 if parts.scheme == "https" else 80)
        return self.address, 80


def build_probe(message_id: str) -> bytes:
    """The ONVIF WS-Discovery Probe for NetworkVideoTransmitter devices."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f'<s:Envelope xmlns:s="{_NS_SOAP12}" xmlns:a="{_NS_WSA}" xmlns:d="{_NS_WSD}" '
        f'xmlns:dn="{_NS_DN}">'
        "<s:Header>"
        f"<a:Action>{_NS_WSD}/Probe</a:Action>"
        f"<a:MessageID>{message_id}</a:MessageID>"
        "<a:To>urn:schemas-xmlsoap-org:ws:2005:04:discovery</a:To>"
        "</s:Header>"
        "<s:Body><d:Probe><d:Types>dn:NetworkVideoTransmitter</d:Types></d:Probe></s:Body>"
        "</s:Envelope>"
    ).encode()


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


def _child_text(element: ET.Element, name: str) -> str:
    for child in element.iter():
        if _local(child.tag) == name and child.text:
            return child.text.strip()
    return ""


def _split_scopes(text: str) -> tuple[str, ...]:
    """Split a Scopes list, re-joining words of a scope that holds an unencoded space."""
    scopes: list[str] = []
    for word in text.split():
        if scopes and not _SCHEME.match(word):
            scopes[-1] += " " + word
        else:
            scopes.append(word)
    return tuple(scopes)


def parse_probe_matches(data: bytes, sender: str, message_id: str) -> list[DiscoveredDevice]:
    """Devices in one ProbeMatches answer to our Probe; [] for anything else."""
    if b"<!DOCTYPE" in data.upper():
        return []
    try:
        root = ET.fromstring(data)
    except ET.ParseError:
        return []
    if _local(root.tag) != "Envelope":
        return []
    header = next((el for el in root if _local(el.tag) == "Header"), None)
    body = next((el for el in root if _local(el.tag) == "Body"), None)
    if body is None:
        return []
    if header is not None:
        action = _child_text(header, "Action")
        if action and not action.rstrip("/").rsplit("/", 1)[-1].startswith("ProbeMatch"):
            return []
        relates_to = _child_text(header, "RelatesTo")
        if relates_to and relates_to != message_id:
            return []
    devices = []
    for match in body.iter():
        if _local(match.tag) != "ProbeMatch":
            continue
        endpoint = _child_text(match, "Address")
        if not endpoint:
            continue
        devices.append(
            DiscoveredDevice(
                endpoint=endpoint,
                address=sender,
                xaddrs=tuple(_child_text(match, "XAddrs").split()),
                types=tuple(_child_text(match, "Types").split()),
                scopes=_split_scopes(_child_text(match, "Scopes")),
            )
        )
    return devices


def probe_interfaces(interface: str | None) -> list[str | None]:
    """IPv4 addresses to probe from: the one asked for, else every up non-loopback one.

    `[None]` means "let the routing table choose" (a host with only loopback).
    """
    if interface is not None:
        try:
            return [str(ipaddress.IPv4Address(interface))]
        except ValueError as e:
            raise OnvifError(f"--interface must be an IPv4 address, not {interface!r}") from e
    stats = psutil.net_if_stats()
    found: list[str | None] = []
    for name, addrs in sorted(psutil.net_if_addrs().items()):
        if name in stats and not stats[name].isup:
            continue
        for addr in addrs:
            if addr.family != socket.AF_INET:
                continue
            if not ipaddress.IPv4Address(addr.address).is_loopback:
                found.append(addr.address)
    return found or [None]


def _open_socket(interface: str | None) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
    try:
        # WS-Discovery is link-local: TTL 1 keeps the probe off routed networks.
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
        if interface is not None:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, socket.inet_aton(interface))
            sock.bind((interface, 0))
        sock.setblocking(False)
    except OSError as e:
        sock.close()
        raise OnvifError(f"cannot probe from interface {interface}: {e.strerror or e}") from e
    return sock


def _send(sockets: dict[socket.socket, str | None], probe: bytes, first: bool) -> None:
    """Send the probe on every socket; raise if the first one left on none of them."""
    errors = []
    for sock, interface in sockets.items():
        try:
            sock.sendto(probe, (WSD_GROUP, WSD_PORT))
        except OSError as e:
            errors.append(f"{interface or 'default route'}: {e.strerror or e}")
    if first and len(errors) == len(sockets):
        raise OnvifError(f"cannot send the WS-Discovery probe ({'; '.join(errors)})")
    for error in errors:
        log.warning("WS-Discovery probe not sent from %s", error)


def discover(timeout: float = 3.0, interface: str | None = None) -> list[DiscoveredDevice]:
    """Multicast an ONVIF Probe and collect the answers for `timeout` seconds.

    Devices are merged by endpoint reference (a device answering on two interfaces is
    listed once) and sorted by address. Raises OnvifError if the probe cannot be sent.
    """
    if timeout <= 0:
        raise OnvifError("--timeout must be positive")
    message_id = uuid.uuid4().urn
    sockets: dict[socket.socket, str | None] = {}
    try:
        for iface in probe_interfaces(interface):
            sockets[_open_socket(iface)] = iface
        found = _collect(sockets, message_id, timeout)
    finally:
        for sock in sockets:
            sock.close()
    return sorted(found.values(), key=lambda d: (d.address, d.endpoint))


def _collect(
    sockets: dict[socket.socket, str | None], message_id: str, timeout: float
) -> dict[str, DiscoveredDevice]:
    """Send the probe (and its one repeat) and gather answers until `timeout` elapses."""
    probe = build_probe(message_id)
    found: dict[str, DiscoveredDevice] = {}
    with selectors.DefaultSelector() as selector:
        for sock in sockets:
            selector.register(sock, selectors.EVENT_READ, data=sock)
        _send(sockets, probe, first=True)
        start = time.monotonic()
        repeat_at: float | None = start + random.uniform(*_REPEAT_DELAY_S)
        deadline = start + timeout
        while (now := time.monotonic()) < deadline:
            if repeat_at is not None and now >= repeat_at:
                _send(sockets, probe, first=False)
                repeat_at = None
            wait = min(deadline, repeat_at or deadline) - now
            for key, _ in selector.select(max(wait, 0.0)):
                _receive(key.data, message_id, found)
    return found


def _receive(sock: socket.socket, message_id: str, found: dict[str, DiscoveredDevice]) -> None:
    try:
        data, (sender, _port) = sock.recvfrom(_MAX_DATAGRAM)
    except OSError as e:
        # An ICMP error from an earlier send surfaces here; it says nothing about others.
        log.debug("WS-Discovery receive failed: %s", e)
        return
    for device in parse_probe_matches(data, sender, message_id):
        known = found.get(device.endpoint)
        if known is not None:
            merged = known.xaddrs + tuple(x for x in device.xaddrs if x not in known.xaddrs)
            device = DiscoveredDevice(
                known.endpoint, known.address, merged, known.types, known.scopes
            )
        found[device.endpoint] = device


def format_device(device: DiscoveredDevice) -> str:
    """Lines describing one device, ending with the probe command to run next."""
    host, port = device.probe_target()
    label = " ".join(x for x in (device.scope("name"), device.scope("hardware")) if x)
    lines = [f"{device.address}  {label or '(no name scope)'}  {device.endpoint}"]
    lines.append(f"  xaddrs: {' '.join(device.xaddrs) or '(none advertised)'}")
    location = device.scope("location")
    if location:
        lines.append(f"  location: {location}")
    port_arg = "" if port == 80 else f" --port {port}"
    lines.append(f"  next:   edge-agent probe --host {host}{port_arg} --user USER")
    return "\n".join(lines)


def print_discovered(timeout: float, interface: str | None) -> int:
    """CLI `discover`: print every device that answered; exit code 1 if none did."""
    devices = discover(timeout=timeout, interface=interface)
    if not devices:
        where = f"from {interface}" if interface else "on any interface"
        print(f"no ONVIF device answered {where} within {timeout:g} s", file=sys.stderr)
        return 1
    for device in devices:
        print(format_device(device))
    print(f"{len(devices)} ONVIF device(s) found", file=sys.stderr)
    return 0
