"""``visionloop release keygen|public-key|publish|kill|list|show`` and ``visionloop fetch-model``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from visionloop.cli import JsonOpt, _table, _ws, app, emit, out, release_app

if TYPE_CHECKING:
    from visionloop.distribute.releases import Release

ChannelOpt = Annotated[str, typer.Option("--channel", "-c", help="Release channel (stable, beta, …).")]
ExpiresOpt = Annotated[int, typer.Option("--expires-days", help="Days apps may trust the manifest.")]
ByOpt = Annotated[str | None, typer.Option("--by", help="Who does it (recorded).")]


def _render(r: Release) -> None:
    m = r.manifest
    files = ", ".join(f"{k} {v['sha256'][:12]} ({v['size']} B)" for k, v in m["formats"].items())
    out.print(
        f"[bold]{r.channel}[/] #{r.sequence} ({r.kind}): v{r.model_version} to {r.rollout_percent}% of devices; "
        f"expires {m['expires_at']}; min app {m['min_app_version'] or '–'}; key {r.key_id}\n  files: {files}",
        highlight=False,
    )


@release_app.command("keygen")
def keygen_cmd(as_json: JsonOpt = False) -> None:
    """Create the workspace's Ed25519 release signing key (keys/, mode 0600); print its public key."""
    from visionloop.distribute.signing import generate_key, key_id, key_paths, public_key_b64

    ws = _ws()
    public = generate_key(ws.root).public_key()
    data = {
        "public_key": public_key_b64(public),
        "key_id": key_id(public),
        "path": str(key_paths(ws.root)[0]),
    }
    emit(
        data,
        as_json,
        lambda: out.print(
            f"Created {data['path']} (key {data['key_id']}). Public key for apps:\n{data['public_key']}",
            highlight=False,
        ),
    )


@release_app.command("public-key")
def public_key_cmd(as_json: JsonOpt = False) -> None:
    """Print the public key (base64) apps use to verify release manifests."""
    from visionloop.distribute.signing import key_id, load_key, public_key_b64

    public = load_key(_ws().root).public_key()
    data = {"public_key": public_key_b64(public), "key_id": key_id(public)}
    emit(data, as_json, lambda: out.print(data["public_key"], highlight=False))


@release_app.command("publish")
def publish_cmd(
    model: Annotated[str, typer.Argument(help="Model version number or alias (exported).")],
    channel: ChannelOpt = "stable",
    rollout: Annotated[int, typer.Option("--rollout", help="Percent of devices (1-100) that get it.")] = 100,
    min_app_version: Annotated[
        str | None, typer.Option("--min-app-version", help="Oldest app version (X.Y.Z) it is for.")
    ] = None,
    expires_days: ExpiresOpt = 30,
    by: ByOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Point a channel at a model version's bundle: a new signed manifest with the next sequence."""
    from visionloop.distribute.releases import publish_release

    r = publish_release(
        _ws(),
        model,
        channel=channel,
        rollout_percent=rollout,
        min_app_version=min_app_version,
        expires_days=expires_days,
        actor=by,
    )
    emit(r.to_dict(), as_json, lambda: _render(r))


@release_app.command("kill")
def kill_cmd(
    channel: ChannelOpt = "stable", expires_days: ExpiresOpt = 30, by: ByOpt = None, as_json: JsonOpt = False
) -> None:
    """Kill switch: send every device of a channel back to the previous model (a new, higher sequence)."""
    from visionloop.distribute.releases import kill_release

    r = kill_release(_ws(), channel=channel, expires_days=expires_days, actor=by)
    emit(r.to_dict(), as_json, lambda: _render(r))


@release_app.command("list")
def list_cmd(
    channel: Annotated[str | None, typer.Option("--channel", "-c", help="Only this channel.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Releases of every channel (or one), newest first."""
    from visionloop.distribute.releases import list_releases

    rows = list_releases(_ws(), channel)
    emit(
        [r.to_dict() for r in rows],
        as_json,
        lambda: out.print(
            _table(
                "Releases",
                ["channel", "sequence", "kind", "model", "rollout", "expires", "by", "created"],
                [
                    [
                        r.channel,
                        r.sequence,
                        r.kind,
                        f"v{r.model_version}",
                        f"{r.rollout_percent}%",
                        r.manifest["expires_at"],
                        r.actor or "–",
                        f"{r.created_at:%Y-%m-%d %H:%M}",
                    ]
                    for r in rows
                ],
            )
        ),
    )


@release_app.command("show")
def show_cmd(
    channel: ChannelOpt = "stable",
    sequence: Annotated[
        int | None, typer.Option("--sequence", help="Release number (default: newest).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """One release: its manifest, files and signature."""
    from visionloop.distribute.releases import get_release

    r = get_release(_ws(), channel, sequence)

    def render() -> None:
        _render(r)
        out.print(f"  signature: {r.signature}", highlight=False)

    emit(r.to_dict(), as_json, render)


@app.command("fetch-model")
def fetch_model_cmd(
    url: Annotated[str, typer.Option("--url", help="The server, e.g. http://127.0.0.1:8000.")],
    public_key: Annotated[str, typer.Option("--public-key", help="The workspace's public key (base64).")],
    dest: Annotated[Path, typer.Option("--dest", help="Folder holding the model and the client's state.")],
    channel: ChannelOpt = "stable",
    device_id: Annotated[
        str | None, typer.Option("--device-id", help="Device id for staged rollout (default: one made once).")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help="onnx, onnx-int8 or ort.")] = "onnx",
    app_version: Annotated[
        str | None, typer.Option("--app-version", help="Refuse releases for newer apps than X.Y.Z.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Reference client: fetch, verify and install a channel's model; keeps the last good one on any failure."""
    from visionloop.distribute.client import fetch_model

    res = fetch_model(url, channel, public_key, dest, device_id=device_id, fmt=fmt, app_version=app_version)
    how = f", resumed from byte {res.resumed_from}" if res.resumed_from else ""
    emit(
        res.to_dict(),
        as_json,
        lambda: out.print(
            f"{res.path}: v{res.model_version} ({res.channel} #{res.sequence}) "
            + ("is current" if res.status == "current" else f"installed, {res.downloaded_bytes} bytes{how}"),
            highlight=False,
        ),
    )
