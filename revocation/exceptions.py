"""Errors raised for bad revocation input; each names the value at fault."""


class InvalidRequest(ValueError):
    """A revocation request was refused: bad target, reason or other input; nothing was created."""


class InvalidTarget(InvalidRequest):
    """The revocation target is missing, blank, ambiguous or unknown."""


class UnknownUser(InvalidTarget):
    """A user id or username does not exist."""


class UnknownGroup(InvalidTarget):
    """A group name does not exist."""


class UnknownScope(InvalidTarget):
    """A scope name is not registered in REVOCATION_SCOPES, or its resolver fails to load."""


class RequestNotFound(LookupError):
    """No revocation request has that id."""


class SessionLimitReached(Exception):
    """A login would exceed REVOCATION_MAX_SESSIONS_PER_USER under the "refuse" policy."""
