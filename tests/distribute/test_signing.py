"""Canonical bytes, Ed25519 signing and the workspace's key files."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from visionloop.distribute import FetchError, ReleaseError
from visionloop.distribute.signing import (
    canonical_bytes,
    generate_key,
    key_id,
    key_paths,
    load_key,
    parse_public_key,
    public_key_b64,
    sign,
    verify,
)

MANIFEST = {"sequence": 3, "channel": "stable", "formats": {"onnx": {"size": 10, "sha256": "ab"}}, "x": None}


def test_canonical_bytes_are_sorted_compact_utf8() -> None:
    assert canonical_bytes({"b": 1, "a": [None, "é", True]}) == '{"a":[null,"é",true],"b":1}'.encode()
    assert canonical_bytes(MANIFEST) == (
        b'{"channel":"stable","formats":{"onnx":{"sha256":"ab","size":10}},"sequence":3,"x":null}'
    )
    assert canonical_bytes(dict(reversed(list(MANIFEST.items())))) == canonical_bytes(MANIFEST)


def test_canonical_bytes_refuse_floats() -> None:
    with pytest.raises(ValueError, match=r"float at manifest\.rollout"):
        canonical_bytes({"rollout": 20.0})


def test_sign_verify_round_trip_and_refusals() -> None:
    key = Ed25519PrivateKey.generate()
    sig = sign(key, MANIFEST)
    assert len(base64.b64decode(sig)) == 64
    public = parse_public_key(public_key_b64(key.public_key()))
    assert verify(public, MANIFEST, sig)
    assert verify(public, dict(reversed(list(MANIFEST.items()))), sig)  # key order is not signed
    assert not verify(public, {**MANIFEST, "sequence": 4}, sig)
    assert not verify(public, MANIFEST, "not base64!")
    other = Ed25519PrivateKey.generate().public_key()
    assert not verify(other, MANIFEST, sig)
    assert key_id(other) != key_id(public) and len(key_id(public)) == 16


def test_parse_public_key_refuses_garbage() -> None:
    with pytest.raises(FetchError, match="not a base64 Ed25519 key"):
        parse_public_key("AAAA")


def test_keygen_writes_private_key_0600_and_public_key(tmp_path: Path) -> None:
    key = generate_key(tmp_path)
    private, public = key_paths(tmp_path)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE(private.parent.stat().st_mode) == 0o700
    assert public.read_text().strip() == public_key_b64(key.public_key())
    loaded = load_key(tmp_path)
    assert public_key_b64(loaded.public_key()) == public_key_b64(key.public_key())
    with pytest.raises(ReleaseError, match="has a release signing key already"):
        generate_key(tmp_path)
    assert public_key_b64(load_key(tmp_path).public_key()) == public_key_b64(key.public_key())


def test_load_key_missing_or_lazy(tmp_path: Path) -> None:
    with pytest.raises(ReleaseError, match="no release signing key") as exc:
        load_key(tmp_path)
    assert "visionloop release keygen" in exc.value.message
    made = load_key(tmp_path, create=True)
    assert public_key_b64(load_key(tmp_path).public_key()) == public_key_b64(made.public_key())


def test_client_and_routes_import_without_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys, visionloop.distribute.client, visionloop.distribute.http, visionloop.cli_release; "
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
