"""Atomic, verified checkpoints that hold tensors and plain data only.

A checkpoint is one file written by ``torch.save``: a dict ``{"format": "reparam-checkpoint",
"version": 1, "sha256": ..., "state": ...}``. ``state`` may contain only tensors, dicts, lists,
tuples, strings, numbers, booleans and ``None``, so ``torch.load(path, weights_only=True)``
(no arbitrary unpickling) opens it. ``sha256`` is the SHA-256 of a canonical walk of ``state``
(each tensor's dtype, shape and bytes; each other value's ``repr``), verified on load: one
flipped byte in a weight is refused instead of trained on.

The file is written to a temporary file in the same folder, fsynced, then renamed over the old
one (atomic on POSIX): a crash or SIGKILL mid-write leaves the previous checkpoint and at most a
``.checkpoint.pt.*.tmp`` file, which :func:`remove_stale_temporaries` deletes on the next run.

Example:
    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp())
    >>> path = save_checkpoint(folder / "checkpoint.pt", {"kind": "vae", "step": 3, "w": torch.ones(2)})
    >>> load_checkpoint(folder / "checkpoint.pt", kind="vae")["step"]
    3
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from reparam.training.errors import CheckpointError, MissingCheckpointError

CHECKPOINT_FILE = "checkpoint.pt"  # the name every ``reparam train`` command writes in its folder
FORMAT, VERSION = "reparam-checkpoint", 1
_PLAIN = (str, int, float, bool, type(None))
_ZIP_MAGIC = b"PK\x03\x04"  # torch.save writes a zip archive


def _digest(value: Any, hasher: Any, where: str) -> None:
    """Feed a canonical description of ``value`` to ``hasher``; raise ``TypeError`` naming the
    key path ``where`` for anything that is not a tensor or plain data."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        hasher.update(f"T{tensor.dtype}{tuple(tensor.shape)}".encode())
        if tensor.numel():
            hasher.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(value, dict):
        hasher.update(f"D{len(value)}".encode())
        for key, item in value.items():
            if not isinstance(key, _PLAIN):
                raise TypeError(f"checkpoint key {where}[{key!r}] is a {type(key).__name__}, not plain data")
            hasher.update(repr(key).encode())
            _digest(item, hasher, f"{where}[{key!r}]")
    elif isinstance(value, list | tuple):
        hasher.update(f"{'L' if isinstance(value, list) else 'U'}{len(value)}".encode())
        for i, item in enumerate(value):
            _digest(item, hasher, f"{where}[{i}]")
    elif isinstance(value, _PLAIN):
        hasher.update(f"{type(value).__name__}:{value!r};".encode())
    else:
        raise TypeError(
            f"checkpoint value {where} is a {type(value).__name__}; checkpoints hold tensors and plain "
            "data only (convert it with a state_dict or plain numbers)"
        )


def checksum(state: dict[str, Any]) -> str:
    """SHA-256 (hex) of ``state``'s canonical walk (see the module docstring)."""
    hasher = hashlib.sha256()
    _digest(state, hasher, "state")
    return hasher.hexdigest()


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    """Write ``state`` (tensors and plain data) with its checksum atomically to ``path``."""
    path = Path(path)
    record = {"format": FORMAT, "version": VERSION, "sha256": checksum(state), "state": state}
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as stream:
            torch.save(record, stream)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path, kind: str | None = None) -> dict[str, Any]:
    """The state saved by :func:`save_checkpoint`, on the CPU, after verifying its checksum
    (and, given ``kind``, that ``state["kind"] == kind``). Every failure raises
    :class:`CheckpointError` with one line naming the file and what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise MissingCheckpointError(
            f"no checkpoint at {path}; pass a run's checkpoint.pt (or train one first)."
        )
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path} is empty (0 bytes): not a checkpoint; delete it or use a backup.")
    with path.open("rb") as stream:
        if stream.read(4) != _ZIP_MAGIC:
            raise CheckpointError(
                f"{path} is not a checkpoint (not a torch.save archive); pass a run's checkpoint.pt."
            )
    try:
        record = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated zip, garbage, or pickled objects weights_only refuses
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:120]
        if reason.startswith("Weights only load failed"):
            reason = "it holds pickled objects, which loading with weights_only=True refuses"
        raise CheckpointError(
            f"{path} is not a readable reparam checkpoint (truncated, corrupt or another kind of "
            f"file: {reason}); use a backup or retrain."
        ) from None
    if not isinstance(record, dict) or record.get("format") != FORMAT or "state" not in record:
        raise CheckpointError(
            f"{path} is not a reparam checkpoint (no '{FORMAT}' header); pass checkpoint.pt."
        )
    if record.get("version") != VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {record.get('version')}; this reparam reads {VERSION}."
        )
    state: dict[str, Any] = record["state"]
    if checksum(state) != record.get("sha256"):
        raise CheckpointError(
            f"{path} is corrupt: its checksum does not match its contents (bytes changed since it was "
            "written); use a backup or retrain."
        )
    if kind is not None and state.get("kind") != kind:
        raise CheckpointError(f"{path} holds a {state.get('kind')!r} checkpoint, not {kind!r}.")
    return state


def remove_stale_temporaries(folder: str | Path, name: str = CHECKPOINT_FILE) -> list[Path]:
    """Delete ``.<name>.*.tmp`` files a killed writer left in ``folder``; returns them."""
    stale = sorted(Path(folder).glob(f".{name}.*.tmp"))
    for path in stale:
        path.unlink(missing_ok=True)
    return stale
