"""Named errors raised by the central server."""


class CentralError(Exception):
    """Base class of every error central raises on purpose."""


class ConfigError(CentralError):
    """The central configuration is missing or invalid."""


class NotFoundError(CentralError):
    """The object does not exist, or lies outside the caller's scope."""


class ForbiddenError(CentralError):
    """The caller's role may not perform this action."""


class InvalidInputError(CentralError):
    """A request or command carries a value that cannot be accepted."""


class EndpointRefused(InvalidInputError):
    """A push endpoint or webhook URL is not one central may send to (not https, not public)."""


class ConflictError(CentralError):
    """The object already exists or its state forbids the change."""


class AuthError(CentralError):
    """The credentials are missing, wrong or expired."""


class ThrottledError(CentralError):
    """Too many attempts; the caller must wait `retry_after` seconds."""

    def __init__(self, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(f"too many attempts, retry in {retry_after:.0f} s")


class WorkflowError(ConflictError):
    """The alert's state does not allow this step, or the step lacks its note or deadline."""


class PushError(CentralError):
    """A push message could not be delivered."""


class BrokerAdminError(CentralError):
    """A broker account or ACL cannot be written, or the broker cannot be reloaded."""
