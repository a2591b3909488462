"""Ed25519 signing of release manifests, and the workspace's signing key.

The key lives outside the database, in ``<workspace>/keys/release-signing.key`` (PKCS#8 PEM,
mode 0600, in a 0700 folder); ``release-signing.pub`` holds the public key as base64 of its 32
raw bytes, the form app developers embed. A manifest is signed over its canonical JSON: keys
sorted, no spaces, UTF-8, and only strings, integers, booleans, null, lists and objects (no
floats, whose text differs between languages), so any client can rebuild the exact bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from visionloop.distribute import FetchError, ReleaseError

KEY_DIR = "keys"
PRIVATE_NAME = "release-signing.key"
PUBLIC_NAME = "release-signing.pub"


def _check_value(value: Any, where: str) -> None:
    if isinstance(value, float):
        raise ValueError(f"canonical JSON refuses the float at {where}; use an integer or a string")
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                raise ValueError(f"canonical JSON needs string keys, not {k!r} at {where}")
            _check_value(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            _check_value(v, f"{where}[{i}]")
    elif value is not None and not isinstance(value, str | int | bool):
        raise ValueError(f"canonical JSON cannot hold {type(value).__name__} at {where}")


def canonical_bytes(manifest: dict[str, Any]) -> bytes:
    """The exact bytes a manifest is signed over: sorted keys, no whitespace, UTF-8, no floats."""
    _check_value(manifest, "manifest")
    return json.dumps(manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def public_key_b64(key: Ed25519PublicKey) -> str:
    """The public key as base64 of its 32 raw bytes."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def key_id(key: Ed25519PublicKey) -> str:
    """A short name of a public key: the first 16 hex digits of the sha256 of its raw bytes."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def parse_public_key(text: str) -> Ed25519PublicKey:
    """A public key from base64 of its 32 raw bytes (as ``visionloop release public-key`` prints it)."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
        if len(raw) != 32:
            raise ValueError(f"{len(raw)} bytes, not 32")
        return Ed25519PublicKey.from_public_bytes(raw)
    except (ValueError, binascii.Error) as exc:
        raise FetchError(
            f"the public key is not a base64 Ed25519 key ({exc})",
            where="--public-key",
            fix="pass the key `visionloop release public-key` prints",
        ) from None


def sign(key: Ed25519PrivateKey, manifest: dict[str, Any]) -> str:
    """The base64 Ed25519 signature of the manifest's canonical bytes."""
    return base64.b64encode(key.sign(canonical_bytes(manifest))).decode("ascii")


def verify(public: Ed25519PublicKey, manifest: dict[str, Any], signature: str) -> bool:
    """True when ``signature`` (base64) is ``public``'s signature of the manifest's canonical bytes."""
    try:
        public.verify(base64.b64decode(signature, validate=True), canonical_bytes(manifest))
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True


def key_paths(root: Path) -> tuple[Path, Path]:
    """The private and public key files of the workspace at ``root``."""
    folder = root / KEY_DIR
    return folder / PRIVATE_NAME, folder / PUBLIC_NAME


def _write_new(path: Path, data: bytes, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def generate_key(root: Path) -> Ed25519PrivateKey:
    """Create the workspace's signing key pair; refused when one exists (rotating breaks every app)."""
    private, public = key_paths(root)
    if private.exists():
        raise ReleaseError(
            "the workspace has a release signing key already",
            where=str(private),
            fix="`visionloop release public-key` prints it; to rotate, move the key file away first "
            "and ship the new public key in every app",
        )
    private.parent.mkdir(mode=0o700, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    tmp = private.with_name(f".{PRIVATE_NAME}.{os.getpid()}.tmp")
    _write_new(tmp, pem, 0o600)
    try:
        os.link(tmp, private)  # never replaces a key another process created meanwhile
    except FileExistsError:
        raise ReleaseError(
            "another process created the release signing key first",
            where=str(private),
            fix="use that key: `visionloop release public-key`",
        ) from None
    finally:
        tmp.unlink()
    pub_tmp = public.with_name(f".{PUBLIC_NAME}.{os.getpid()}.tmp")
    pub_tmp.write_text(public_key_b64(key.public_key()) + "\n", encoding="ascii")
    os.replace(pub_tmp, public)
    return key


def load_key(root: Path, *, create: bool = False) -> Ed25519PrivateKey:
    """The workspace's signing key (created first when ``create`` and there is none)."""
    private, _ = key_paths(root)
    if not private.exists():
        if create:
            try:
                return generate_key(root)
            except ReleaseError:
                if not private.exists():
                    raise
        else:
            raise ReleaseError(
                "the workspace has no release signing key",
                where=str(private),
                fix="run `visionloop release keygen`",
            )
    try:
        key = serialization.load_pem_private_key(private.read_bytes(), password=None)
    except (ValueError, TypeError) as exc:
        raise ReleaseError(
            f"the release signing key cannot be read ({exc})",
            where=str(private),
            fix="restore the key file from a backup",
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ReleaseError(
            "the release signing key is not an Ed25519 key",
            where=str(private),
            fix="restore the key file made by `visionloop release keygen`",
        )
    return key
