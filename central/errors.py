"""Named errors raised by the central server."""


class CentralError(Exception):
    """Base class of every error central raises on purpose."""


class ConfigError(CentralError):
    """The central configuration is missing or invalid."""
