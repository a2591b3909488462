"""The one error tree of visionloop.

Every error a user can cause says *what* went wrong, *where* (a file, an item,
a version, a setting) and *what to do* about it. The CLI turns these into exit
codes in one place (``cli.py``); library code never exits the process.

::

    VisionloopError                      exit 1
    ├── UsageError                       exit 2   bad arguments or options
    │   ├── TaskNotFoundError            no review task has this id
    │   └── TaskConflictError            the review task was decided by someone else first
    ├── WorkspaceError                   exit 3
    │   ├── WorkspaceNotFoundError
    │   ├── WorkspaceExistsError
    │   └── ConfigError                  visionloop.toml is invalid
    ├── StoreError                       exit 4
    │   ├── BlobNotFoundError
    │   ├── BlobCorruptError
    │   └── SchemaError                  DB schema older/newer than this code
    ├── DataError                        exit 5   the input data is at fault
    │   ├── FormatDetectionError
    │   ├── UnsafeArchiveError
    │   ├── UnknownClassesError
    │   └── StrictImportError            ``--strict`` and at least one finding
    ├── VersionError                     exit 6
    │   ├── VersionNotFoundError
    │   └── AmbiguousVersionError
    └── ModelError                       exit 7   model versions, aliases, gates, approvals
        ├── ModelNotFoundError           no such model version or alias
        ├── GateError                    a gate cannot run on this model version
        ├── PromotionError               promote / rollback refused
        ├── ApprovalError                approve / reject refused
        ├── ReleaseError                 a release cannot be published, killed or found
        └── FetchError                   the app client refused an update (its last good model stays)
    └── PipelineError                    exit 8   pipeline runs and the agent
        ├── PipelineBusyError            another pipeline run holds the lock
        └── StopRequested                a clean shutdown (SIGTERM) stopped a run between steps
"""

from __future__ import annotations


class VisionloopError(Exception):
    """Base of every error visionloop raises on purpose."""

    exit_code = 1

    def __init__(self, what: str, *, where: str | None = None, fix: str | None = None) -> None:
        self.what = what
        self.where = where
        self.fix = fix
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """The full sentence shown to a person: what, where, what to do."""
        parts = [self.what.rstrip(".") + "."]
        if self.where:
            parts.append(f"Where: {self.where}.")
        if self.fix:
            parts.append(f"Fix: {self.fix.rstrip('.')}.")
        return " ".join(parts)

    def to_dict(self) -> dict[str, str | None]:
        """A JSON-friendly form for ``--json`` output."""
        return {"error": type(self).__name__, "what": self.what, "where": self.where, "fix": self.fix}


class UsageError(VisionloopError):
    exit_code = 2


class TaskNotFoundError(UsageError):
    """No review task has this id."""


class TaskConflictError(UsageError):
    """The task is not in the status the decision expected (someone else decided it first)."""


class WorkspaceError(VisionloopError):
    exit_code = 3


class WorkspaceNotFoundError(WorkspaceError):
    pass


class WorkspaceExistsError(WorkspaceError):
    pass


class ConfigError(WorkspaceError):
    pass


class StoreError(VisionloopError):
    exit_code = 4


class BlobNotFoundError(StoreError):
    pass


class BlobCorruptError(StoreError):
    pass


class SchemaError(StoreError):
    pass


class DataError(VisionloopError):
    exit_code = 5


class FormatDetectionError(DataError):
    pass


class UnsafeArchiveError(DataError):
    pass


class UnknownClassesError(DataError):
    pass


class StrictImportError(DataError):
    pass


class VersionError(VisionloopError):
    exit_code = 6


class VersionNotFoundError(VersionError):
    pass


class AmbiguousVersionError(VersionError):
    pass


class ModelError(VisionloopError):
    exit_code = 7


class ModelNotFoundError(ModelError):
    pass


class GateError(ModelError):
    pass


class PromotionError(ModelError):
    pass


class ApprovalError(ModelError):
    pass


class ReleaseError(ModelError):
    """A release cannot be published, killed or found (exit 7)."""


class FetchError(ModelError):
    """The client refused or failed an update; the last good model is kept (exit 7)."""


class PipelineError(VisionloopError):
    exit_code = 8


class PipelineBusyError(PipelineError):
    pass


class StopRequested(PipelineError):
    pass
