"""Errors that the ``paperzoo`` CLI turns into one clear sentence and a non-zero exit.

Library code raises these (never ``SystemExit``) with a message that names the thing that is wrong
and says what to do about it; the CLI prints ``error: <message>`` and exits with status 1. The full
traceback is shown only with ``--debug`` or ``PAPERZOO_DEBUG=1``.
"""


class PaperzooError(Exception):
    """Base class: a problem the user can fix, described in one sentence."""


class UnknownExperimentError(PaperzooError):
    """An experiment name that is not in the catalog."""


class DatasetNotFoundError(PaperzooError):
    """A dataset's files are not where the DataModule looks for them."""


class CorruptDataError(PaperzooError):
    """A dataset file exists but is not in the format it claims to be."""


class CheckpointError(PaperzooError):
    """A checkpoint or weights file that is missing, corrupt, or not one of ours."""


class NonFiniteLossError(PaperzooError):
    """Training produced a NaN or infinite loss."""


class ConfigError(PaperzooError, ValueError):
    """A configuration that parses but does not make sense (e.g. model and data disagree); also a ValueError."""
