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


def prepare_run_folder(out: Path, resume: bool, overwrite: bool) -> Path | None:
    """Check ``out`` for a new or resumed run (see the module docstring); returns where an old
    run was moved by ``overwrite``, else ``None``. Creates nothing: the engine creates the
    folder when it writes its first checkpoint, so a run refused early leaves no folder."""
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
        return None
    if out.is_dir():
        remove_stale_temporaries(out)
        if any(out.iterdir()):
            if overwrite:
                return move_aside(out)
            names = sorted(p.name for p in out.iterdir())
            shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
            raise RunFolderError(
                f"--out {out} is not empty (holds {shown}); pass --resume to continue that run, or "
                "--overwrite to move it aside to <out>.old-<time> and start afresh."
            )
    return None
