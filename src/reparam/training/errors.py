"""The errors a user of ``reparam train`` can cause and fix: each message is one line naming the
file or option and the fix. The command line turns them into usage errors (exit status 2)."""

from __future__ import annotations


class TrainingError(Exception):
    """Base class: a problem with the run folder, a checkpoint, the data or an option."""


class CheckpointError(TrainingError):
    """A checkpoint is missing, truncated, corrupt (checksum), or of another kind."""


class MissingCheckpointError(CheckpointError, FileNotFoundError):
    """``--resume`` without a checkpoint to resume from."""


class RunFolderError(TrainingError):
    """``--out`` holds a previous run (pass ``--resume`` or ``--overwrite``) or cannot be used."""


class DataError(TrainingError):
    """The training data cannot be used as given (non-finite, wrong range, shape or size)."""


class OptionsError(TrainingError):
    """An option is invalid, or differs from the run being resumed."""
