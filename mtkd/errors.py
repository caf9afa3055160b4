"""Errors that describe a problem with the user's input or files.

The CLI prints them as one line (no traceback) and exits with status 2. All derive from
`ValueError` so that library users can catch them the usual way.
"""


class MtkdError(ValueError):
    """Base class: a clear, one-line message about bad input."""


class ConfigError(MtkdError):
    """An invalid hyper-parameter or configuration value."""


class UnknownNameError(MtkdError):
    """A name (data set, model, preset, strategy, ...) that no registry knows."""


class DatasetError(MtkdError):
    """A data set that cannot be loaded: unknown, not prepared, or malformed."""


class CheckpointError(MtkdError):
    """A checkpoint or teacher file that is corrupt, truncated or does not match."""


class OutputExistsError(MtkdError):
    """An output directory that already holds a different run."""


class OutputError(MtkdError):
    """An output directory that cannot be written (read-only, no permission, a file in its path)."""


class TrainingDivergedError(MtkdError):
    """A loss became NaN or infinite."""
