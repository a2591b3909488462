"""The reference client: keep a model file up to date from a channel, safely.

:func:`fetch_model` asks the server for the channel's manifest, and refuses it unless its
Ed25519 signature verifies with the public key the app ships, it names the channel asked for,
it has not expired, the app is recent enough for it, and its sequence is not lower than the
last one accepted (a replayed old manifest). The model file is downloaded into a ``.part`` file
(an interrupted download resumes from where it stopped with an HTTP ``Range`` request), checked
against the manifest's size and sha256, then renamed over the current model in one step. On any
failure the current model stays as it was and :class:`FetchError` says why.

``DEST`` holds the model (``model.onnx``, ``model.int8.onnx`` or ``model.ort``),
``release-state.json`` (the accepted manifest's channel, sequence, hash, ETag) and ``device-id``
(a random id made once, so a device stays in the same rollout bucket). Standard library plus
``cryptography``: no torch, no HTTP client package.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from email.message import Message
from pathlib import Path
from typing import Any

from visionloop.distribute import FetchError
from visionloop.distribute.signing import key_id, parse_public_key, verify
from visionloop.fileio import atomic_write, fsync_dir, sha256_file

RELEASE_FORMAT = "visionloop.release/1"
STATE = "release-state.json"
DEVICE_ID = "device-id"
FILE_NAMES = {"onnx": "model.onnx", "onnx-int8": "model.int8.onnx", "ort": "model.ort"}
CHUNK = 1 << 16


@dataclass(frozen=True)
class FetchResult:
    """What :func:`fetch_model` did: ``updated`` (a new file is in place) or ``current``."""

    status: str
    channel: str
    sequence: int
    model_version: int
    format: str
    path: str
    sha256: str
    downloaded_bytes: int
    resumed_from: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_state(dest: Path) -> dict[str, Any] | None:
    """The last accepted release recorded in ``dest`` (None before the first)."""
    path = dest / STATE
    if not path.exists():
        return None
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
        int(state["sequence"])
        return dict(state)
    except (ValueError, KeyError, TypeError):
        raise FetchError(
            "the client's state file is unreadable, so replayed manifests could not be told apart",
            where=str(path),
            fix="restore it, or delete it together with the model to start over",
        ) from None


def _device_id(dest: Path, given: str | None) -> str:
    if given:
        return given
    path = dest / DEVICE_ID
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    made = secrets.token_hex(16)
    atomic_write(path, made.encode() + b"\n")
    return made


def _parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in text.split("."))


def _get(url: str, headers: dict[str, str], timeout: float) -> tuple[int, Message[str, str], Any]:
    """(status, headers (case-insensitive), open response) — 304 and 416 are answers, not errors; others raise."""
    req = urllib.request.Request(url, headers=headers)
    try:
        resp = urllib.request.urlopen(req, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code in (304, 416):
            return exc.code, exc.headers, exc
        detail = exc.read(2000).decode("utf-8", "replace")
        raise FetchError(
            f"the server answered {exc.code} {exc.reason}: {detail}",
            where=url,
            fix="check the URL, the channel and the server's log",
        ) from None
    return int(resp.status), resp.headers, resp


def _check_manifest(
    envelope: Any,
    *,
    url: str,
    channel: str,
    public_key: str,
    state: dict[str, Any] | None,
    app_version: str | None,
    now: datetime,
) -> dict[str, Any]:
    """The verified manifest of ``envelope``, or FetchError saying why it is refused."""
    public = parse_public_key(public_key)
    if not isinstance(envelope, dict) or not isinstance(envelope.get("manifest"), dict):
        raise FetchError("the server's answer is not a release manifest", where=url, fix="check the URL")
    manifest: dict[str, Any] = envelope["manifest"]
    signature = envelope.get("signature")
    try:
        signed = isinstance(signature, str) and verify(public, manifest, signature)
    except ValueError:
        signed = False
    if not signed:
        raise FetchError(
            f"the manifest's signature does not verify with the public key given (it names key "
            f"{str(manifest.get('key_id'))[:16]!r}; yours is {key_id(public)!r}): signed by another "
            "key, or changed on the way",
            where=url,
            fix="pass the key `visionloop release public-key` prints on the server's workspace",
        )
    if manifest.get("format") != RELEASE_FORMAT or manifest.get("channel") != channel:
        raise FetchError(
            f"the manifest is for channel {manifest.get('channel')!r}, not {channel!r}",
            where=url,
            fix="ask for the channel the manifest was published on",
        )
    expires = _parse_time(str(manifest["expires_at"]))
    if expires <= now:
        raise FetchError(
            f"the manifest (sequence {manifest['sequence']}) expired at {manifest['expires_at']}",
            where=url,
            fix="publish the release again on the server (`visionloop release publish`)",
        )
    if state is not None:
        if state["channel"] != channel:
            raise FetchError(
                f"this folder follows channel {state['channel']!r}, not {channel!r}",
                where=str(STATE),
                fix="use another --dest for another channel",
            )
        if int(manifest["sequence"]) < int(state["sequence"]):
            raise FetchError(
                f"the manifest's sequence {manifest['sequence']} is lower than {state['sequence']}, "
                "the last one accepted: a replayed old manifest",
                where=url,
                fix="nothing to do here: the current model stays; check the server if this repeats",
            )
    wanted = manifest.get("min_app_version")
    if wanted and app_version and _version(app_version) < _version(str(wanted)):
        raise FetchError(
            f"the release needs app version {wanted} or later; this app is {app_version}",
            where=url,
            fix="update the app first",
        )
    return manifest


def _download(
    url: str,
    part: Path,
    size: int,
    timeout: float,
    on_progress: Callable[[int], None] | None,
) -> tuple[int, int]:
    """Fill ``part`` with the file's ``size`` bytes, resuming what it holds; (resumed from, downloaded)."""
    have = part.stat().st_size if part.exists() else 0
    if have > size:
        part.unlink()
        have = 0
    if have == size:
        return have, 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    status, resp_headers, resp = _get(url, headers, timeout)
    with contextlib.closing(resp):
        if status == 416:  # the server disagrees about the size: start over
            part.unlink(missing_ok=True)
            return _download(url, part, size, timeout, on_progress)
        if status == 206:
            start = int(resp_headers.get("Content-Range", "bytes 0-").split()[1].split("-")[0])
            if start != have:
                raise FetchError(
                    f"asked for bytes from {have}, the server sent from {start}",
                    where=url,
                    fix="try again",
                )
            mode = "ab"
        else:
            have, mode = 0, "wb"
        resumed, done = have, 0
        with part.open(mode) as f:
            while True:
                chunk = resp.read(CHUNK)
                if not chunk:
                    break
                f.write(chunk)
                f.flush()
                done += len(chunk)
                if on_progress is not None:
                    on_progress(have + done)
            os.fsync(f.fileno())
    return resumed, done


def fetch_model(
    url: str,
    channel: str,
    public_key: str,
    dest: Path | str,
    *,
    device_id: str | None = None,
    fmt: str = "onnx",
    app_version: str | None = None,
    timeout: float = 30.0,
    now: datetime | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> FetchResult:
    """Bring the model in ``dest`` up to the release of ``channel`` meant for this device.

    See the module docstring; on any failure the current model is untouched and FetchError
    (what, where, what to do) is raised. ``on_progress`` gets the bytes of the file held so far."""
    if fmt not in FILE_NAMES:
        raise FetchError(f"unknown format {fmt!r}", where="--format", fix=f"use one of {sorted(FILE_NAMES)}")
    folder = Path(dest)
    folder.mkdir(parents=True, exist_ok=True)
    state = read_state(folder)
    base = url.rstrip("/")
    query = urllib.parse.urlencode({"device_id": _device_id(folder, device_id)})
    manifest_url = f"{base}/v1/releases/{urllib.parse.quote(channel, safe='')}/manifest?{query}"
    try:
        # a 304 only vouches for what was accepted before: under the same key, for the same format
        pinned = key_id(parse_public_key(public_key))
        same = state is not None and state.get("format") == fmt and state.get("key_id") == pinned
        headers = {"If-None-Match": state["etag"]} if state and same and state.get("etag") else {}
        status, resp_headers, resp = _get(manifest_url, headers, timeout)
        with contextlib.closing(resp):
            body = resp.read() if status != 304 else b""
        if status == 304 and state is not None and (folder / state["file"]).is_file():
            return _current(folder, state)
        if status == 304:  # the model file is gone: ask again without the ETag
            status, resp_headers, resp = _get(manifest_url, {}, timeout)
            with contextlib.closing(resp):
                body = resp.read()
        manifest = _check_manifest(
            json.loads(body),
            url=manifest_url,
            channel=channel,
            public_key=public_key,
            state=state,
            app_version=app_version,
            now=now or datetime.now(UTC),
        )
        if fmt not in manifest["formats"]:
            raise FetchError(
                f"release {manifest['sequence']} has no {fmt} file",
                where=manifest_url,
                fix=f"ask for one of {sorted(manifest['formats'])} with --format",
            )
        meta = manifest["formats"][fmt]
        sha, size = str(meta["sha256"]), int(meta["size"])
        target = folder / FILE_NAMES[fmt]
        etag = resp_headers.get("ETag")
        if state is not None and state["sha256"] == sha and target.is_file() and sha256_file(target) == sha:
            _remember(folder, manifest, fmt, target, sha, size, etag)
            return _current(folder, read_state(folder) or state)
        part = folder / f".{sha}.part"
        resumed, done = _download(base + str(meta["path"]), part, size, timeout, on_progress)
        got = part.stat().st_size
        if got != size or sha256_file(part) != sha:
            part.unlink()
            raise FetchError(
                f"the downloaded {fmt} file does not match the signed manifest ({got} bytes, "
                f"expected {size} with sha256 {sha[:12]}): changed on the server or on the way",
                where=base + str(meta["path"]),
                fix="the current model stays; report it to the server's operator",
            )
        os.replace(part, target)
        fsync_dir(folder)
        _remember(folder, manifest, fmt, target, sha, size, etag)
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise FetchError(
            f"cannot fetch the release ({exc})", where=base, fix="check the URL and that the server runs"
        ) from None
    except (ValueError, KeyError, TypeError) as exc:
        raise FetchError(
            f"the server's manifest is malformed ({type(exc).__name__}: {exc})",
            where=manifest_url,
            fix="check the server's version and log",
        ) from None
    return FetchResult(
        status="updated",
        channel=channel,
        sequence=int(manifest["sequence"]),
        model_version=int(manifest["model_version"]),
        format=fmt,
        path=str(target),
        sha256=sha,
        downloaded_bytes=done,
        resumed_from=resumed,
    )


def _remember(
    folder: Path, manifest: dict[str, Any], fmt: str, target: Path, sha: str, size: int, etag: str | None
) -> None:
    state = {
        "channel": manifest["channel"],
        "sequence": int(manifest["sequence"]),
        "model_version": int(manifest["model_version"]),
        "format": fmt,
        "file": target.name,
        "sha256": sha,
        "size": size,
        "key_id": manifest["key_id"],
        "expires_at": manifest["expires_at"],
        "etag": etag,
        "accepted_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    atomic_write(folder / STATE, json.dumps(state, indent=1).encode())


def _current(folder: Path, state: dict[str, Any]) -> FetchResult:
    return FetchResult(
        status="current",
        channel=str(state["channel"]),
        sequence=int(state["sequence"]),
        model_version=int(state["model_version"]),
        format=str(state["format"]),
        path=str(folder / state["file"]),
        sha256=str(state["sha256"]),
        downloaded_bytes=0,
        resumed_from=0,
    )
