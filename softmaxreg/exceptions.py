"""The library's own error types.

Every error a user can provoke with bad input is one of these (or a plain ``ValueError``
subclass), with a message that names the file, the array or the setting that is wrong.
"""

from __future__ import annotations


class SoftmaxRegError(Exception):
    """Base class of every error raised on purpose by softmaxreg."""


class DataError(SoftmaxRegError, ValueError):
    """A data file or array that cannot be used: missing, truncated, corrupt or malformed."""


class ModelFileError(SoftmaxRegError, ValueError):
    """A model file that cannot be loaded: truncated, corrupt, foreign or of a newer format."""


class TrainingDivergedError(SoftmaxRegError, FloatingPointError):
    """The training loss became NaN or infinite; the model keeps its last finite weights."""
