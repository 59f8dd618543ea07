"""Download a model file from central and check its size, hash and central's signature."""

from __future__ import annotations

import base64
import hashlib
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edge_agent.central_http import basic_authorization, ssl_context
from edge_agent.credentials import Credential
from edge_agent.errors import ModelError
from fsv_contract.models import DOWNLOAD_PATH, InstallModelArgs, install_signed_bytes

CHUNK = 1 << 20
TIMEOUT_S = 60.0


def load_public_key(path: Path) -> Ed25519PublicKey:
    """Central's signing public key (PEM); ModelError naming the file otherwise."""
    try:
        key = serialization.load_pem_public_key(path.read_bytes())
    except (OSError, ValueError) as e:
        raise ModelError(f"models.public_key {path}: not a readable PEM public key: {e}") from e
    if not isinstance(key, Ed25519PublicKey):
        raise ModelError(f"models.public_key {path}: not an Ed25519 key")
    return key


def key_id(public: Ed25519PublicKey) -> str:
    """The key's short name, as central computes it (first 16 hex of its raw SHA-256)."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def check_signature(args: InstallModelArgs, public: Ed25519PublicKey) -> None:
    """ModelError unless central's key signed this name, version, hash and class list."""
    if args.key_id != key_id(public):
        raise ModelError(
            f"model {args.name} {args.version}: signed by key {args.key_id}, "
            f"but this site trusts key {key_id(public)}"
        )
    try:
        signature = base64.b64decode(args.signature, validate=True)
        public.verify(signature, install_signed_bytes(args))
    except (InvalidSignature, ValueError) as e:
        raise ModelError(
            f"model {args.name} {args.version}: the signature does not verify "
            "with central's key; refused"
        ) from e


def download(
    central_url: str,
    login: Credential,
    args: InstallModelArgs,
    target: Path,
    ca_file: Path | None = None,
) -> None:
    """Fetch the file to `target` (atomically); ModelError on size, hash or HTTP trouble."""
    query = urllib.parse.urlencode({"name": args.name, "version": args.version})
    url = central_url.rstrip("/") + DOWNLOAD_PATH + "?" + query
    request = urllib.request.Request(url, headers={"Authorization": basic_authorization(login)})
    context = ssl_context(ca_file)
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    digest = hashlib.sha256()
    size = 0
    try:
        with (
            urllib.request.urlopen(
                request, timeout=TIMEOUT_S, context=context if url.startswith("https") else None
            ) as response,
            part.open("wb") as out,
        ):
            while chunk := response.read(CHUNK):
                size += len(chunk)
                if size > args.bytes:
                    raise ModelError(
                        f"model {args.name} {args.version}: download is larger than the "
                        f"{args.bytes} bytes announced; refused"
                    )
                digest.update(chunk)
                out.write(chunk)
    except urllib.error.HTTPError as e:
        part.unlink(missing_ok=True)
        raise ModelError(f"model {args.name} {args.version}: central answered {e.code}") from e
    except (urllib.error.URLError, OSError) as e:
        part.unlink(missing_ok=True)
        raise ModelError(f"model {args.name} {args.version}: download failed: {e}") from e
    except ModelError:
        part.unlink(missing_ok=True)
        raise
    if digest.hexdigest() != args.sha256 or size != args.bytes:
        part.unlink(missing_ok=True)
        raise ModelError(
            f"model {args.name} {args.version}: downloaded file has SHA-256 "
            f"{digest.hexdigest()} ({size} bytes), not the signed {args.sha256} "
            f"({args.bytes} bytes); refused"
        )
    part.replace(target)


def file_matches(path: Path, sha256: str) -> bool:
    """True if `path` exists with this SHA-256 (an earlier download of the same version)."""
    if not path.is_file():
        return False
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest() == sha256
