"""Training-loop tools shared by every ``reparam train`` command: atomic checkpoints, RNG state
for bit-for-bit resume, JSON-lines metrics, non-finite-loss and Ctrl-C guards, progress bars."""

from reparam.training.batches import ShuffledBatches
from reparam.training.checkpoint import CHECKPOINT_FILE, load_checkpoint, save_checkpoint
from reparam.training.guards import GracefulInterrupt, NonFiniteLossError, check_finite
from reparam.training.metrics import METRICS_FILE, MetricsLog
from reparam.training.progress import training_progress
from reparam.training.rng import rng_state, seed_everything, set_rng_state

__all__ = [
    "CHECKPOINT_FILE",
    "METRICS_FILE",
    "GracefulInterrupt",
    "MetricsLog",
    "NonFiniteLossError",
    "ShuffledBatches",
    "check_finite",
    "load_checkpoint",
    "rng_state",
    "save_checkpoint",
    "seed_everything",
    "set_rng_state",
    "training_progress",
]
