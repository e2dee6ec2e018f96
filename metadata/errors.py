"""Errors of the metadata package: bad records, an unusable metrics store, bad prediction input.

`metadata` imports no other planflow package, so this is its own small tree rooted at
`MetadataError`; the planner and the CLI wrap it into `PlanflowError` at their boundary
(`raise PlanningError(...) from err`). Every message names the object at fault and the fix.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


class MetadataError(Exception):
    """Root of the metadata package's errors."""


class RecordError(MetadataError):
    """A metric record that cannot be decoded: another schema version, a missing or bad field."""


class MetricsStoreError(MetadataError):
    """Redis cannot be reached or used for metrics. The message names the URL without password;
    `condition` what the server said (`metadata.store_errors`), "" if unknown."""

    def __init__(self, message: str, *, condition: str = "") -> None:
        super().__init__(message)
        self.condition = condition


def redact_url(url: str) -> str:
    """`url` with any password replaced by `***`, safe to log or show.

    >>> redact_url("redis://user:secret@host:6379/0")
    'redis://user:***@host:6379/0'
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable redis url>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
