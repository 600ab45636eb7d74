"""The project's own error type: raised for anything a user can cause and fix."""


class S4AQAError(Exception):
    """A problem with the user's input or environment, with a message that says what to do.

    The CLI prints it on one line and exits non-zero; no stack trace is shown.
    """


class Unsupported(S4AQAError):
    """A method cannot train on this data (e.g. it needs unlabeled videos and there are none);
    a reproduction records such a run as skipped rather than failed."""
