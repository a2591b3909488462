"""``visionloop model …``: list, show, compare, promote, rollback, approve, reject."""

from __future__ import annotations
