"""Named errors raised by the edge agent's components."""


class EdgeAgentError(Exception):
    """Base class of every error the edge agent raises on purpose."""


class ConfigError(EdgeAgentError):
    """The configuration file is missing, unreadable or invalid."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"invalid configuration {path}:\n{lines}")


class CredentialError(EdgeAgentError):
    """A camera credential named in the configuration cannot be resolved."""


class StreamError(EdgeAgentError):
    """A camera stream cannot be opened or carries video the recorder cannot handle."""


class UnsupportedStreamError(StreamError):
    """The stream has no video track or a codec the recorder cannot store."""


class SegmentIndexError(EdgeAgentError):
    """The segment index is inconsistent with the files on disk."""


class OnvifError(EdgeAgentError):
    """An ONVIF device did not answer or answered with an error."""


class DetectionError(EdgeAgentError):
    """Violation detection failed for a camera (model, frames, rules or evidence)."""


class ModelError(DetectionError):
    """A detection model file is missing, corrupt or has an unexpected input/output shape."""


class InferenceStopped(DetectionError):
    """The shared inference pool stopped before it ran a camera's job."""


class ClipError(DetectionError):
    """An evidence clip cannot be cut from the recorded segments."""


class StorageReportError(EdgeAgentError):
    """The storage report cannot read the segment index or the storage folder."""


class OutboxError(EdgeAgentError):
    """A message or media file cannot be put in the outbox (wrong site, too large, unreadable)."""


class UploadError(EdgeAgentError):
    """A media file could not be uploaded to central; `retry` says whether trying again may help."""

    def __init__(self, message: str, retry: bool = True) -> None:
        self.retry = retry
        super().__init__(message)


class SegmentWriteError(EdgeAgentError):
    """A segment file cannot be written (disk full, read-only or missing storage folder)."""


class UplinkError(EdgeAgentError):
    """Video cannot be pushed to central (no such camera, no recording, bad stream, link down)."""
