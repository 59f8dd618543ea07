"""Central's Ed25519 key that signs clip manifests, so a manifest itself cannot be rewritten.

The edge's hash chain proves the segments; central's signature proves the manifest (and
through it the clip's SHA-256) came from this platform. Anyone holding the public key
(`central-server verify-clip --public-key`) can check a clip offline.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from central.errors import ConfigError
from fsv_common.files import write_whole
from fsv_contract.video import ClipManifest, Signature

KEY_FILE = "video-signing-key.pem"


def key_id(public: Ed25519PublicKey) -> str:
    """A short name of a public key: the first 16 hex digits of its raw bytes' SHA-256."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public: Ed25519PublicKey) -> bytes:
    """The public key as PEM, to hand to whoever verifies clips."""
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_public_key(path: Path) -> Ed25519PublicKey:
    """A public key PEM, or the public half of a private key PEM."""
    data = path.read_bytes()
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError:
        private = serialization.load_pem_private_key(data, password=None)
        if not isinstance(private, Ed25519PrivateKey):
            raise ConfigError(f"{path} is not an Ed25519 key") from None
        return private.public_key()
    if not isinstance(key, Ed25519PublicKey):
        raise ConfigError(f"{path} is not an Ed25519 public key")
    return key


class ManifestSigner:
    """Signs manifests with a key kept in central's data folder (made on first use, 0600)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._key = self._load_or_create(path)
        self.public_key = self._key.public_key()

    @staticmethod
    def _load_or_create(path: Path) -> Ed25519PrivateKey:
        """The key in `path`, made there first if there is none.

        Several nodes may start at once on one data folder: the new key is written whole
        to a private temporary file, then linked into place, which fails if another node
        got there first; its key is then the one used, so all nodes sign alike.
        """
        if not path.exists():
            key = Ed25519PrivateKey.generate()
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            if write_whole(path, pem, mode=0o600, replace=False):
                return key
            # another node made it first: load theirs below
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(loaded, Ed25519PrivateKey):
            raise ConfigError(f"{path} is not an Ed25519 private key")
        return loaded

    def sign_bytes(self, data: bytes) -> Signature:
        """Central's signature over any canonical bytes (e.g. a model version's)."""
        value = base64.b64encode(self._key.sign(data)).decode()
        return Signature(key_id=key_id(self.public_key), value=value)

    def sign(self, manifest: ClipManifest) -> ClipManifest:
        """The manifest with central's signature over its canonical bytes."""
        value = self._key.sign(manifest.signed_bytes())
        signature = Signature(
            key_id=key_id(self.public_key), value=base64.b64encode(value).decode()
        )
        return manifest.model_copy(update={"signature": signature})


def signature_ok(manifest: ClipManifest, public: Ed25519PublicKey) -> bool:
    """True if the manifest carries a valid signature by `public`."""
    sig = manifest.signature
    if sig is None or sig.key_id != key_id(public):
        return False
    try:
        public.verify(base64.b64decode(sig.value), manifest.signed_bytes())
    except (InvalidSignature, ValueError):
        return False
    return True
