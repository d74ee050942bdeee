"""Errors the casework services raise for requests they refuse (unknown ids, bad values)."""


class CaseworkError(Exception):
    """A request that cannot be carried out; the message says why, for the analyst."""


class NotFound(CaseworkError):
    pass
