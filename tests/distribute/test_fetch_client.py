"""The reference client against a real server: updates, every refusal keeps the last good model,
and an interrupted download resumes."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from _helpers import run_cli
from visionloop.distribute import FetchError
from visionloop.distribute.client import STATE, fetch_model
from visionloop.distribute.releases import get_release, publish_release
from visionloop.distribute.signing import load_key, public_key_b64, sign
from visionloop.registry.versions import get_model
from visionloop.workspace import utcnow


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _key(rws) -> str:
    return public_key_b64(load_key(rws.root, create=True).public_key())


@pytest.fixture
def fixed_server() -> Iterator[tuple[str, dict[str, bytes]]]:
    """A stand-in for a hostile server or proxy: answers every GET with ``body['manifest']``."""
    body: dict[str, bytes] = {"manifest": b"{}"}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = body["manifest"]
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    srv = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", body
    srv.shutdown()
    thread.join(5)


def test_happy_path_update_then_current_then_new_release(rws, release_server, tmp_path) -> None:
    publish_release(rws, 1)
    dest = tmp_path / "app"
    first = fetch_model(release_server, "stable", _key(rws), dest)
    v1 = get_model(rws, 1).artifacts["model.onnx"]
    assert (first.status, first.sequence, first.model_version) == ("updated", 1, 1)
    assert _sha(dest / "model.onnx") == v1 and first.downloaded_bytes == (dest / "model.onnx").stat().st_size
    assert (dest / "device-id").is_file()
    again = fetch_model(release_server, "stable", _key(rws), dest)
    assert again.status == "current" and again.sequence == 1  # answered 304 on the stored ETag
    publish_release(rws, 2)
    second = fetch_model(release_server, "stable", _key(rws), dest)
    assert (second.status, second.sequence, second.model_version) == ("updated", 2, 2)
    assert _sha(dest / "model.onnx") == get_model(rws, 2).artifacts["model.onnx"]
    assert json.loads((dest / STATE).read_text())["sequence"] == 2
    assert not list(dest.glob(".*.part"))


def _installed_v1(rws, server: str, dest: Path) -> str:
    publish_release(rws, 1)
    fetch_model(server, "stable", _key(rws), dest)
    return _sha(dest / "model.onnx")


def _kept(dest: Path, sha: str, sequence: int = 1) -> None:
    assert _sha(dest / "model.onnx") == sha
    assert json.loads((dest / STATE).read_text())["sequence"] == sequence
    assert not list(dest.glob(".*.part"))


def test_tampered_file_is_refused_and_the_last_good_model_kept(rws, release_server, tmp_path) -> None:
    dest = tmp_path / "app"
    good = _installed_v1(rws, release_server, dest)
    publish_release(rws, 2)
    blob = rws.blobs.path(get_model(rws, 2).artifacts["model.onnx"])
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte changed on the server
    blob.chmod(0o644)
    blob.write_bytes(bytes(data))
    with pytest.raises(FetchError, match="does not match the signed manifest") as exc:
        fetch_model(release_server, "stable", _key(rws), dest)
    assert "current model stays" in exc.value.message
    _kept(dest, good)


def test_replayed_older_manifest_is_refused(rws, release_server, fixed_server, tmp_path) -> None:
    dest = tmp_path / "app"
    publish_release(rws, 1)
    publish_release(rws, 2)
    fetch_model(release_server, "stable", _key(rws), dest)
    good = _sha(dest / "model.onnx")
    url, body = fixed_server
    body["manifest"] = get_release(rws, "stable", 1).envelope_bytes()  # genuine, signed, but older
    with pytest.raises(FetchError, match="sequence 1 is lower than 2, the last one accepted"):
        fetch_model(url, "stable", _key(rws), dest)
    _kept(dest, good, sequence=2)


def test_expired_manifest_is_refused(rws, release_server, tmp_path) -> None:
    dest = tmp_path / "app"
    good = _installed_v1(rws, release_server, dest)
    publish_release(rws, 2, expires_days=30, now=utcnow() - timedelta(days=31))
    with pytest.raises(FetchError, match=r"\(sequence 2\) expired at"):
        fetch_model(release_server, "stable", _key(rws), dest)
    _kept(dest, good)


def test_manifest_signed_by_another_key_is_refused(rws, release_server, fixed_server, tmp_path) -> None:
    dest = tmp_path / "app"
    good = _installed_v1(rws, release_server, dest)
    publish_release(rws, 2)
    # the genuine server, but the app pins another key
    stranger = public_key_b64(Ed25519PrivateKey.generate().public_key())
    with pytest.raises(FetchError, match="does not verify with the public key given"):
        fetch_model(release_server, "stable", stranger, dest)
    _kept(dest, good)
    # a forged manifest (higher sequence, same fields) signed with the forger's own key
    url, body = fixed_server
    forged = {**get_release(rws, "stable").manifest, "sequence": 99}
    body["manifest"] = json.dumps(
        {"manifest": forged, "signature": sign(Ed25519PrivateKey.generate(), forged)}
    ).encode()
    with pytest.raises(FetchError, match="signed by another key, or changed on the way"):
        fetch_model(url, "stable", _key(rws), dest)
    # the genuine signature over a changed manifest
    genuine = get_release(rws, "stable").envelope()
    genuine["manifest"]["model_version"] = 1
    body["manifest"] = json.dumps(genuine).encode()
    with pytest.raises(FetchError, match="does not verify"):
        fetch_model(url, "stable", _key(rws), dest)
    _kept(dest, good)


def test_too_old_app_and_unreachable_server_keep_the_model(rws, release_server, tmp_path) -> None:
    dest = tmp_path / "app"
    good = _installed_v1(rws, release_server, dest)
    publish_release(rws, 2, min_app_version="3.0.0")
    with pytest.raises(FetchError, match=r"needs app version 3\.0\.0 or later; this app is 2\.9\.9"):
        fetch_model(release_server, "stable", _key(rws), dest, app_version="2.9.9")
    with pytest.raises(FetchError, match="cannot fetch the release"):
        fetch_model("http://127.0.0.1:9", "stable", _key(rws), dest)
    _kept(dest, good)


class Interrupted(Exception):
    pass


def test_interrupted_download_resumes_with_range(rws, release_server, tmp_path) -> None:
    publish_release(rws, 1)
    dest = tmp_path / "app"
    size = rws.blobs.size(get_model(rws, 1).artifacts["model.onnx"])
    assert size > 3 * 65536  # the file arrives in several chunks

    def stop_after_two_chunks(held: int) -> None:
        if held >= 2 * 65536:
            raise Interrupted

    with pytest.raises(Interrupted):
        fetch_model(release_server, "stable", _key(rws), dest, on_progress=stop_after_two_chunks)
    (part,) = dest.glob(".*.part")
    held = part.stat().st_size
    assert 0 < held < size and not (dest / "model.onnx").exists() and not (dest / STATE).exists()
    res = fetch_model(release_server, "stable", _key(rws), dest)
    assert res.status == "updated" and res.resumed_from == held and res.downloaded_bytes == size - held
    assert _sha(dest / "model.onnx") == get_model(rws, 1).artifacts["model.onnx"]
    assert not part.exists()


def test_cli_release_commands_and_fetch_model(rws, release_server, tmp_path, capsys, monkeypatch) -> None:
    root = str(rws.root)
    code, out, _ = run_cli(capsys, monkeypatch, "-w", root, "release", "keygen", "--json")
    key = json.loads(out)["public_key"]
    assert code == 0
    code, out, _ = run_cli(capsys, monkeypatch, "-w", root, "release", "public-key")
    assert code == 0 and out.strip() == key
    code, _, err = run_cli(capsys, monkeypatch, "-w", root, "release", "keygen")
    assert code == 7 and "has a release signing key already" in err
    for v in ("1", "2"):
        code, out, _ = run_cli(
            capsys, monkeypatch, "-w", root, "release", "publish", v, "--channel", "stable", "--json"
        )
        assert code == 0 and json.loads(out)["model_version"] == int(v)
    code, out, _ = run_cli(
        capsys, monkeypatch, "-w", root, "release", "kill", "--channel", "stable", "--by", "me", "--json"
    )
    assert code == 0 and (json.loads(out)["sequence"], json.loads(out)["model_version"]) == (3, 1)
    code, out, _ = run_cli(capsys, monkeypatch, "-w", root, "release", "list", "--json")
    assert code == 0 and [r["sequence"] for r in json.loads(out)] == [3, 2, 1]
    code, out, _ = run_cli(capsys, monkeypatch, "-w", root, "release", "show", "--sequence", "2")
    assert code == 0 and "stable #2 (publish): v2" in out
    dest = tmp_path / "app"
    args = [
        "fetch-model",
        "--url",
        release_server,
        "--channel",
        "stable",
        "--public-key",
        key,
        "--dest",
        str(dest),
    ]
    code, out, _ = run_cli(capsys, monkeypatch, *args, "--json")
    assert code == 0 and json.loads(out)["model_version"] == 1
    stranger = public_key_b64(Ed25519PrivateKey.generate().public_key())
    code, _, err = run_cli(capsys, monkeypatch, *args[:-4], "--public-key", stranger, "--dest", str(dest))
    assert code == 7 and "does not verify" in err and (dest / "model.onnx").is_file()
