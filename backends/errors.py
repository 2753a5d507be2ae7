"""One error tree for the whole product.

A `ConciergeError` carries a message that is safe and useful to show the person who asked:
what happened, why, and what to do. Adapters translate client exceptions into these `from e`;
anything else is a bug, logged with an incident id by the door that caught it.
"""

from __future__ import annotations


class ConciergeError(Exception):
    """An expected failure whose message can be shown to a person as it is."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class RequestInvalid(ConciergeError):
    """The request cannot be understood or is not well-formed."""

    exit_code = 2


class PolicyDenied(ConciergeError):
    """The site's policy does not allow this request (or this person)."""

    exit_code = 3


class PermissionDenied(ConciergeError):
    """The person may not do this to this job (e.g. cancel someone else's)."""

    exit_code = 3


class JobNotFound(ConciergeError):
    exit_code = 4


class BackendRejected(ConciergeError):
    """The cluster refused the job (bad partition, invalid GRES, over a limit)."""

    exit_code = 5


class BackendUnavailable(ConciergeError):
    """The cluster could not be reached; try again later."""

    exit_code = 6

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ConfigurationError(ConciergeError):
    """The site's configuration is missing or wrong; an admin has to fix it."""

    exit_code = 7
