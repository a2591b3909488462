"""Release channels: signed manifests that point a channel at a model version's published bundle.

Every release of a channel has the next sequence number (1, 2, 3, …; unique with the channel,
taken inside a transaction and retried when another writer took it first) and remembers the
release it replaced, so a channel keeps its history. ``publish`` points the channel at a model
version, to a share of devices (``rollout_percent``; the others keep the release before).
``kill`` (the kill switch) sends every device back to the model before the current one with a
*new* release: a higher sequence, signed again, so clients that refuse older sequences take it.

The manifest is stored as the exact canonical bytes that were signed; serving it needs no key.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, insert, select
from sqlalchemy.exc import IntegrityError

from visionloop.distribute import ReleaseError
from visionloop.distribute.rollout import release_for_device
from visionloop.distribute.signing import canonical_bytes, key_id, load_key, sign
from visionloop.errors import UsageError
from visionloop.export.bundle import MANIFEST, publish_bundle
from visionloop.registry.versions import get_model
from visionloop.store import schema
from visionloop.workspace import Workspace, aware, utcnow

RELEASE_FORMAT = "visionloop.release/1"
FORMATS = ("onnx", "onnx-int8", "ort")
FILES_PATH = "/v1/releases/files/"
_CHANNEL = re.compile(r"^[a-z][a-z0-9._-]{0,31}$")
_APP_VERSION = re.compile(r"^\d{1,9}\.\d{1,9}\.\d{1,9}$")
_MAX_TRIES = 25


@dataclass(frozen=True)
class Release:
    """One ``releases`` row; ``manifest_text`` is exactly the signed bytes (UTF-8)."""

    id: int
    channel: str
    sequence: int
    kind: str
    model_version: int
    rollout_percent: int
    previous_id: int | None
    manifest_text: str
    signature: str
    key_id: str
    actor: str | None
    created_at: datetime

    @property
    def manifest(self) -> dict[str, Any]:
        return dict(json.loads(self.manifest_text))

    def envelope(self) -> dict[str, Any]:
        """What clients receive: the manifest and its signature."""
        return {"manifest": self.manifest, "signature": self.signature}

    def envelope_bytes(self) -> bytes:
        """The envelope as the bytes the server sends (the manifest part is its canonical form)."""
        return b'{"manifest":%s,"signature":%s}' % (
            self.manifest_text.encode(),
            json.dumps(self.signature).encode(),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "channel": self.channel,
            "sequence": self.sequence,
            "kind": self.kind,
            "model_version": self.model_version,
            "rollout_percent": self.rollout_percent,
            "previous_id": self.previous_id,
            "key_id": self.key_id,
            "actor": self.actor,
            "created_at": self.created_at.isoformat(),
            "manifest": self.manifest,
            "signature": self.signature,
        }


def _release(row: Any) -> Release:
    return Release(
        id=row.id,
        channel=row.channel,
        sequence=row.sequence,
        kind=row.kind,
        model_version=row.model_version,
        rollout_percent=row.rollout_percent,
        previous_id=row.previous_id,
        manifest_text=row.manifest,
        signature=row.signature,
        key_id=row.key_id,
        actor=row.actor,
        created_at=aware(row.created_at),
    )


def check_channel(name: str) -> None:
    """Refuse a channel name that is not 1-32 of a-z, 0-9, '.', '_', '-' starting with a letter."""
    if not _CHANNEL.match(name):
        raise UsageError(
            f"invalid channel name {name!r}",
            fix="use 1-32 lowercase letters, digits, '.', '_' or '-', starting with a letter (e.g. stable, beta)",
        )


def _iso(t: datetime) -> str:
    return aware(t).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _head(conn: Connection, channel: str) -> Release | None:
    t = schema.releases
    row = conn.execute(select(t).where(t.c.channel == channel).order_by(t.c.sequence.desc()).limit(1)).first()
    return None if row is None else _release(row)


def _by_id(conn: Connection, release_id: int | None) -> Release | None:
    if release_id is None:
        return None
    row = conn.execute(select(schema.releases).where(schema.releases.c.id == release_id)).first()
    return None if row is None else _release(row)


def _bundle_formats(ws: Workspace, ref: str | int) -> tuple[int, str, dict[str, Any]]:
    """(version, bundle.json oid, formats) of a model version, publishing its bundle when only exported."""
    mv = get_model(ws, ref)
    if MANIFEST not in mv.artifacts:
        if "model.onnx" not in mv.artifacts:
            raise ReleaseError(
                f"model version {mv.version} has not been exported, so it has no files to release",
                where=str(ws.root),
                fix=f"run `visionloop export {mv.version}` first",
            )
        publish_bundle(ws, mv.version)
        mv = get_model(ws, mv.version)
    oid = mv.artifacts[MANIFEST]
    files = json.loads(ws.blobs.get(oid, verify=True))["files"]
    formats = {
        meta["kind"]: {
            "sha256": meta["sha256"],
            "size": int(meta["bytes"]),
            "path": FILES_PATH + meta["sha256"],
        }
        for meta in files.values()
        if meta["kind"] in FORMATS
    }
    return mv.version, oid, formats


def _append(
    ws: Workspace, channel: str, make: Callable[[Connection, Release | None], dict[str, Any]]
) -> Release:
    """Insert the channel's next release; ``make(conn, head)`` gives its row, numbered after ``head``.
    Retried when another writer took that number first (the unique key says so)."""
    t = schema.releases
    for attempt in range(_MAX_TRIES):
        try:
            with ws.engine.begin() as conn:
                head = _head(conn, channel)
                values = make(conn, head)
                conn.execute(insert(t).values(**values))
                row = conn.execute(
                    select(t).where(t.c.channel == channel, t.c.sequence == values["sequence"])
                ).one()
                return _release(row)
        except IntegrityError:
            if attempt == _MAX_TRIES - 1:
                raise
            time.sleep(random.uniform(0.005, 0.05))
    raise AssertionError("unreachable")


def _signed_row(
    ws: Workspace,
    *,
    channel: str,
    sequence: int,
    kind: str,
    model_version: int,
    bundle_oid: str,
    formats: dict[str, Any],
    rollout_percent: int,
    min_app_version: str | None,
    now: datetime,
    expires_days: int,
    previous_id: int | None,
    actor: str | None,
) -> dict[str, Any]:
    key = load_key(ws.root, create=True)
    manifest = {
        "format": RELEASE_FORMAT,
        "channel": channel,
        "sequence": sequence,
        "kind": kind,
        "model_version": model_version,
        "bundle_sha256": bundle_oid,
        "formats": formats,
        "min_app_version": min_app_version,
        "rollout_percent": rollout_percent,
        "issued_at": _iso(now),
        "expires_at": _iso(now + timedelta(days=expires_days)),
        "key_id": key_id(key.public_key()),
    }
    return {
        "channel": channel,
        "sequence": sequence,
        "kind": kind,
        "model_version": model_version,
        "rollout_percent": rollout_percent,
        "previous_id": previous_id,
        "manifest": canonical_bytes(manifest).decode("utf-8"),
        "signature": sign(key, manifest),
        "key_id": manifest["key_id"],
        "actor": actor,
        "created_at": now,
    }


def _check_expiry(expires_days: int) -> None:
    if not 1 <= expires_days <= 3650:
        raise UsageError(
            f"--expires-days must be between 1 and 3650, not {expires_days}",
            fix="pass how long apps may trust this manifest, e.g. 30",
        )


def publish_release(
    ws: Workspace,
    ref: str | int,
    *,
    channel: str = "stable",
    rollout_percent: int = 100,
    min_app_version: str | None = None,
    expires_days: int = 30,
    actor: str | None = None,
    now: datetime | None = None,
) -> Release:
    """Point ``channel`` at the published bundle of model version ``ref`` (a number or an alias).

    A new signed manifest with the channel's next sequence; ``rollout_percent`` (1-100) of devices
    get it, the others keep the release before. The signing key is created on first use."""
    check_channel(channel)
    if not 1 <= rollout_percent <= 100:
        raise UsageError(
            f"--rollout must be a whole percent from 1 to 100, not {rollout_percent}",
            fix="pass e.g. 10 for a staged rollout, 100 for every device",
        )
    if min_app_version is not None and not _APP_VERSION.match(min_app_version):
        raise UsageError(f"--min-app-version {min_app_version!r} is not X.Y.Z", fix="pass e.g. 2.3.0")
    _check_expiry(expires_days)
    version, bundle_oid, formats = _bundle_formats(ws, ref)
    when = now or utcnow()

    def make(_: Connection, head: Release | None) -> dict[str, Any]:
        return _signed_row(
            ws,
            channel=channel,
            sequence=(head.sequence + 1) if head else 1,
            kind="publish",
            model_version=version,
            bundle_oid=bundle_oid,
            formats=formats,
            rollout_percent=rollout_percent,
            min_app_version=min_app_version,
            now=when,
            expires_days=expires_days,
            previous_id=head.id if head else None,
            actor=actor,
        )

    return _append(ws, channel, make)


def kill_release(
    ws: Workspace,
    *,
    channel: str = "stable",
    expires_days: int = 30,
    actor: str | None = None,
    now: datetime | None = None,
) -> Release:
    """The kill switch: every device of ``channel`` goes back to the model before the current one.

    The target is the latest earlier release with another model version (widening a rollout of
    the same model is not a step back). The new release has the next sequence, a 100% rollout and
    the target's files, and replaces the target in the history: killing again goes one more back."""
    check_channel(channel)
    _check_expiry(expires_days)
    when = now or utcnow()

    def make(conn: Connection, head: Release | None) -> dict[str, Any]:
        if head is None:
            raise ReleaseError(
                f"channel {channel!r} has no release to kill",
                where=str(ws.root),
                fix=f"publish one with `visionloop release publish MODEL --channel {channel}`",
            )
        target = _by_id(conn, head.previous_id)
        while target is not None and target.model_version == head.model_version:
            target = _by_id(conn, target.previous_id)
        if target is None:
            raise ReleaseError(
                f"channel {channel!r} has no earlier model than v{head.model_version} to go back to",
                where=str(ws.root),
                fix=f"publish the model devices should get instead: `visionloop release publish V --channel {channel}`",
            )
        m = target.manifest
        return _signed_row(
            ws,
            channel=channel,
            sequence=head.sequence + 1,
            kind="kill",
            model_version=target.model_version,
            bundle_oid=m["bundle_sha256"],
            formats=m["formats"],
            rollout_percent=100,
            min_app_version=m["min_app_version"],
            now=when,
            expires_days=expires_days,
            previous_id=target.previous_id,
            actor=actor,
        )

    return _append(ws, channel, make)


def list_releases(ws: Workspace, channel: str | None = None) -> list[Release]:
    """Releases, newest first (of one channel, or of all)."""
    t = schema.releases
    q = select(t).order_by(t.c.channel, t.c.sequence.desc())
    if channel is not None:
        check_channel(channel)
        q = q.where(t.c.channel == channel)
    with ws.engine.connect() as conn:
        return [_release(r) for r in conn.execute(q)]


def get_release(ws: Workspace, channel: str, sequence: int | None = None) -> Release:
    """A channel's release by sequence (default: the newest)."""
    check_channel(channel)
    t = schema.releases
    with ws.engine.connect() as conn:
        if sequence is None:
            found = _head(conn, channel)
        else:
            row = conn.execute(select(t).where(t.c.channel == channel, t.c.sequence == sequence)).first()
            found = None if row is None else _release(row)
    if found is None:
        what = f"channel {channel!r} has no release" + ("" if sequence is None else f" {sequence}")
        raise ReleaseError(
            what, where=str(ws.root), fix="`visionloop release list` shows the channels and their releases"
        )
    return found


def release_for(ws: Workspace, channel: str, device_id: str | None) -> Release | None:
    """The release of ``channel`` that device ``device_id`` gets now (see ``rollout``), or None."""
    releases = {r.id: r for r in list_releases(ws, channel)}
    if not releases:
        return None
    head = max(releases.values(), key=lambda r: r.sequence)
    return release_for_device(
        head, device_id, lambda r: releases.get(r.previous_id) if r.previous_id is not None else None
    )


def released_files(ws: Workspace) -> set[str]:
    """The sha256 of every file some release names (the only blobs the file route serves)."""
    t = schema.releases
    with ws.engine.connect() as conn:
        texts = conn.execute(select(t.c.manifest)).scalars().all()
    return {f["sha256"] for text in texts for f in json.loads(text)["formats"].values()}
