"""Model distribution to apps: signed release manifests on channels, staged rollout, a kill switch.

``signing`` (Ed25519 keys and canonical JSON), ``rollout`` (which release a device gets: pure),
``releases`` (publish, kill, list, show: the ``releases`` table), ``http`` (the routes the serve
app mounts) and ``client`` (the reference client: verify, resume, replace atomically). None of it
imports torch.
"""

from __future__ import annotations

from visionloop.errors import FetchError, ReleaseError

__all__ = ["FetchError", "ReleaseError"]
