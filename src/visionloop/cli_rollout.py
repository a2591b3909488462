"""``visionloop rollout status|canary|shadow|rollback|promote``: the servers' traffic split with the
``candidate`` alias, recorded in the workspace (see ``serve/rollout_state.py``)."""

from __future__ import annotations

import getpass
import json
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from visionloop.cli import JsonOpt, _table, _ws, emit, out, rollout_app
from visionloop.errors import UsageError

if TYPE_CHECKING:
    from visionloop.serve.rollout_state import RolloutRecord

VersionArg = Annotated[str, typer.Argument(help="The version to try (3 or v3) or an alias.")]
ByOpt = Annotated[str | None, typer.Option("--by", help="Who does it (default: the current user).")]
ReasonOpt = Annotated[str | None, typer.Option("--reason", help="Why (kept in the history).")]
ForceOpt = Annotated[
    bool, typer.Option("--force", help="Make it the candidate even if not approved (recorded).")
]


def _user(by: str | None) -> str | None:
    if by:
        return by
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in a bare container
        return None


def _name(version: int | None) -> str:
    return "-" if version is None else f"v{version}"


def _describe(r: RolloutRecord) -> str:
    if r.mode == "off":
        return "off: production answers every request"
    share = "answers" if r.mode == "canary" else "sees copies of"
    return f"{r.mode}: candidate v{r.candidate_version} {share} {r.percent:g}% of requests"


def _said(r: RolloutRecord) -> None:
    who = f" (by {r.actor}" + (f": {r.reason})" if r.reason else ")") if r.actor else ""
    out.print(escape(f"Rollout {_describe(r)}{who}"), highlight=False)


@rollout_app.command("status")
def status_cmd(as_json: JsonOpt = False) -> None:
    """The rollout in force, what production and candidate name, and the latest changes."""
    from visionloop.registry.aliases import resolve_alias
    from visionloop.serve.rollout_state import current_rollout, rollout_history

    ws = _ws()
    now, history = current_rollout(ws), rollout_history(ws)
    data = {
        **now.to_dict(),
        "production": resolve_alias(ws, "production"),
        "candidate": resolve_alias(ws, "candidate"),
        "history": [r.to_dict() for r in history],
    }

    def render() -> None:
        out.print(escape(f"Rollout {_describe(now)}"), highlight=False)
        out.print(f"production: {_name(data['production'])}; candidate: {_name(data['candidate'])}")
        rows = [
            [
                f"{r.created_at:%Y-%m-%d %H:%M:%S}" if r.created_at else "",
                r.mode,
                f"{r.percent:g}%",
                _name(r.candidate_version),
                r.actor or "",
                r.reason or "",
            ]
            for r in history
        ]
        if rows:
            out.print(
                _table(
                    "Latest changes",
                    ["time", "mode", "percent", "candidate", "by", "reason"],
                    [[escape(str(c)) for c in row] for row in rows],
                )
            )

    emit(data, as_json, render)


def _start(
    mode: str, version: str, percent: float, by: str | None, reason: str | None, force: bool, as_json: bool
) -> None:
    from visionloop.serve.rollout import parse_mode
    from visionloop.serve.rollout_state import start_rollout

    r = start_rollout(_ws(), parse_mode(mode), version, percent, actor=_user(by), reason=reason, force=force)
    emit(r.to_dict(), as_json, lambda: _said(r))


@rollout_app.command("canary")
def canary_cmd(
    version: VersionArg,
    percent: Annotated[
        float, typer.Option("--percent", help="Share of requests (0-100) the candidate answers.")
    ] = 10.0,
    by: ByOpt = None,
    reason: ReasonOpt = None,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Move `candidate` to VERSION; it answers PERCENT of requests (a device always gets the same side)."""
    _start("canary", version, percent, by, reason, force, as_json)


@rollout_app.command("shadow")
def shadow_cmd(
    version: VersionArg,
    percent: Annotated[
        float, typer.Option("--percent", help="Share of requests (0-100) copied to the candidate.")
    ] = 100.0,
    by: ByOpt = None,
    reason: ReasonOpt = None,
    force: ForceOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Move `candidate` to VERSION; it sees copies of PERCENT of requests (logged, never returned)."""
    _start("shadow", version, percent, by, reason, force, as_json)


def _post(url: str, api_key: str | None, body: dict[str, Any]) -> dict[str, Any]:
    """POST ``body`` to a running server's ``/v1/rollout/rollback``; its JSON answer."""
    target = url.rstrip("/") + "/v1/rollout/rollback"
    headers = {"content-type": "application/json"}
    if api_key:
        headers["x-api-key"] = api_key
    req = urllib.request.Request(target, data=json.dumps(body).encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return dict(json.loads(resp.read()))
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:300]
        fix = "pass --api-key (or set VISIONLOOP_API_KEY)" if exc.code == 401 else "see the server's log"
        raise UsageError(
            f"the server refused the rollback: HTTP {exc.code} {detail}", where=target, fix=fix
        ) from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise UsageError(
            f"cannot roll back through the server ({exc})",
            where=target,
            fix="check --url; is the server running?",
        ) from None


@rollout_app.command("rollback")
def rollback_cmd(
    url: Annotated[
        str | None,
        typer.Option(
            "--url", help="A running server (e.g. http://127.0.0.1:8000): it applies on its next request."
        ),
    ] = None,
    api_key: Annotated[
        str | None, typer.Option("--api-key", envvar="VISIONLOOP_API_KEY", help="The server's API key.")
    ] = None,
    by: ByOpt = None,
    reason: ReasonOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """End the rollout: production answers everything. Recorded in the workspace (servers follow it at
    their next poll); with --url the server flips before it answers, then records it itself."""
    from visionloop.serve.rollout_state import rollback

    actor = _user(by)
    if url is None:
        r = rollback(_ws(), actor=actor, reason=reason)
        emit(r.to_dict(), as_json, lambda: _said(r))
        return
    answer = _post(url, api_key, {"by": actor, "reason": reason})
    if answer.get("record_error"):  # the server holds the rollback but could not record it: record it here
        answer["recorded_here"] = rollback(_ws(), actor=actor, reason=reason).to_dict()
    recorded = answer.get("recorded_here") or answer.get("recorded")

    def render() -> None:
        out.print(
            f"Rolled back at {url}: production v{answer.get('production_version')} answers every request"
            + ("" if recorded else " (not recorded: that server serves no workspace)"),
            highlight=False,
        )

    emit(answer, as_json, render)


@rollout_app.command("promote")
def promote_cmd(by: ByOpt = None, reason: ReasonOpt = None, as_json: JsonOpt = False) -> None:
    """Move `production` to the candidate's version and end the rollout."""
    from visionloop.serve.rollout_state import promote_candidate

    event, r = promote_candidate(_ws(), actor=_user(by), reason=reason)
    emit(
        {"promotion": event.to_dict(), "rollout": r.to_dict()},
        as_json,
        lambda: out.print(
            f"production: v{event.from_version or '-'} → v{event.to_version}; rollout off", highlight=False
        ),
    )
