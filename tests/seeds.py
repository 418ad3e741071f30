"""The suite's seed offset: every seed in the tests goes through :func:`seeded`.

``pytest --seed-offset N`` (or ``REPARAM_TEST_SEED=N``) shifts every seed, so the statistical
thresholds can be checked under other draws than the default ones: the suite must pass under
any offset. Import with ``from seeds import seeded`` (``tests/`` is on pytest's ``pythonpath``).
"""

from __future__ import annotations

import os


def seed_offset() -> int:
    """The offset added to every seed: ``--seed-offset N`` or ``REPARAM_TEST_SEED`` (default 0)."""
    return int(os.environ.get("REPARAM_TEST_SEED", "0"))


def seeded(seed: int) -> int:
    """``seed`` shifted by the suite's offset; use it for every ``manual_seed`` and ``default_rng``."""
    return seed + seed_offset()
