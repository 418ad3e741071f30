"""The run folder (``--out``): a run never deletes or overwrites a previous one.

* A new run into a folder that holds files is refused (:class:`RunFolderError` naming
  ``--resume`` and ``--overwrite``).
* ``overwrite=True`` renames the old folder to ``<out>.old-<YYYYmmdd-HHMMSS>`` (never deletes).
* ``resume=True`` needs the folder's checkpoint.
* Temporary files a killed checkpoint writer left behind are removed.

Example:
    >>> prepare_run_folder(Path("runs/vae"), resume=False, overwrite=False)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from reparam.training.checkpoint import CHECKPOINT_FILE, remove_stale_temporaries
from reparam.training.errors import MissingCheckpointError, RunFolderError


def move_aside(folder: Path) -> Path:
    """Rename ``folder`` to ``<folder>.old-<timestamp>`` (a free name); returns the new path."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = folder.with_name(f"{folder.name}.old-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = folder.with_name(f"{folder.name}.old-{stamp}-{n}")
    folder.rename(target)
    return target


def check_writable(out: Path, option: str = "--out") -> None:
    """Raise :class:`RunFolderError` naming ``option`` unless a file can be written in ``out``
    (tried by creating the folder and a probe file; folders it created are removed again, so
    a refused run leaves nothing behind)."""
    created = []
    parent = out
    while not parent.exists() and parent != parent.parent:
        created.append(parent)
        parent = parent.parent
    probe = out / ".reparam-write-check"
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        reason = error.strerror or type(error).__name__
        message = f"{option} {out}: cannot write there ({reason}); pass a writable folder."
        raise RunFolderError(message) from None
    finally:
        for folder in created:  # deepest first; only the empty folders made just now
            with contextlib.suppress(OSError):
                folder.rmdir()


def prepare_run_folder(out: Path, resume: bool, overwrite: bool) -> Path | None:
    """Check ``out`` for a new or resumed run (see the module docstring); returns where an old
    run was moved by ``overwrite``, else ``None``. Leaves no new folder (a write is tried and
    undone, :func:`check_writable`): the engine creates the folder when it writes its first
    checkpoint, so a run refused early leaves nothing behind."""
    if resume and overwrite:
        raise RunFolderError("--resume and --overwrite exclude each other; pass one of them.")
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"--out {out} is a file, not a folder; pass a folder path.")
    if resume:
        if not (out / CHECKPOINT_FILE).is_file():
            raise MissingCheckpointError(
                f"--resume: no {CHECKPOINT_FILE} in {out} to resume from; drop --resume to start a new run."
            )
        remove_stale_temporaries(out)
        check_writable(out)
        return None
    moved = None
    if out.is_dir():
        remove_stale_temporaries(out)
        names = sorted(p.name for p in out.iterdir())
        if names and overwrite:
            moved = move_aside(out)
        elif names:
            shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
            raise RunFolderError(
                f"--out {out} is not empty (holds {shown}); pass --resume to continue that run, or "
                "--overwrite to move it aside to <out>.old-<time> and start afresh."
            )
    check_writable(out)
    return moved
