"""Errors that carry a message meant for the person or agent who asked.

Adapters turn these into tool errors or HTTP 4xx answers as they are; anything else is a bug and is
reported as an internal error without its traceback.
"""


class PersistprocError(Exception):
    """Base of every error whose message is safe and useful to show to a client."""


class InvalidInput(PersistprocError):
    """An argument was wrong; the message says what was wrong and what is accepted."""


class NotFound(PersistprocError):
    """No process has the pid or name that was asked for."""


class Conflict(PersistprocError):
    """The request clashes with the state of a process (for example a name taken by another one)."""


class SpawnFailed(PersistprocError):
    """The operating system refused to start the command."""
