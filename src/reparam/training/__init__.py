"""The training engine behind every ``reparam train`` command and its parts: the loop
(:func:`fit` running a :class:`Task` under :class:`RunSettings`), verified ``weights_only``
checkpoints, the run folder that never loses a run, RNG state for bit-for-bit resume, data
checks, JSON-lines/CSV/TensorBoard metrics, non-finite and Ctrl-C guards, progress bars, and
data-parallel training under ``torchrun`` (plain ``torch.distributed`` DDP)."""

from reparam.training.batches import ShuffledBatches
from reparam.training.checkpoint import CHECKPOINT_FILE, checksum, load_checkpoint, save_checkpoint
from reparam.training.data_checks import check_splits
from reparam.training.engine import Context, RunResult, RunSettings, Task, fit
from reparam.training.errors import (
    CheckpointError,
    DataError,
    MissingCheckpointError,
    OptionsError,
    RunFolderError,
    TrainingError,
)
from reparam.training.guards import GracefulInterrupt, NonFiniteLossError, check_finite
from reparam.training.metrics import CSV_FILE, METRICS_FILE, MetricsLog
from reparam.training.progress import training_progress
from reparam.training.rng import rng_state, seed_everything, set_rng_state
from reparam.training.runs import prepare_run_folder

__all__ = [
    "CHECKPOINT_FILE",
    "CSV_FILE",
    "METRICS_FILE",
    "CheckpointError",
    "Context",
    "DataError",
    "GracefulInterrupt",
    "MetricsLog",
    "MissingCheckpointError",
    "NonFiniteLossError",
    "OptionsError",
    "RunFolderError",
    "RunResult",
    "RunSettings",
    "ShuffledBatches",
    "Task",
    "TrainingError",
    "check_finite",
    "check_splits",
    "checksum",
    "fit",
    "load_checkpoint",
    "prepare_run_folder",
    "rng_state",
    "save_checkpoint",
    "seed_everything",
    "set_rng_state",
    "training_progress",
]
