"""Zero host syncs per estimator step (forward and backward): on a GPU each read of a tensor's
value by the host stalls the queue. Counted by instrumenting the aten ops that read values
(``tests/sync_counter.py``), with torch.distributions' Normal / Bernoulli / Categorical /
OneHotCategorical."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sync_counter import count_syncs
from torch.distributions import Distribution

sys.path.insert(0, str(Path(__file__).parent))  # the shared cases beside this file
from estimator_cases import CASES, forward, params


@pytest.fixture
def no_validation() -> Iterator[None]:
    """torch's argument validation reads values (one sync per check) when a distribution is
    built, and ``OneHotCategorical`` builds its inner ``Categorical`` with the default setting
    whatever ``validate_args`` it is given; the construction is not the estimator step."""
    previous = Distribution._validate_args
    Distribution.set_default_validate_args(False)
    yield
    Distribution.set_default_validate_args(previous)


@pytest.mark.parametrize("name", sorted(CASES))
def test_no_host_sync_per_step(name: str, no_validation: None) -> None:
    make, family = CASES[name]
    estimator = make()
    step = forward(estimator, family)
    leaves = params(family)
    step(*leaves).sum().backward()  # a first step: stateful baselines start their state
    with count_syncs() as syncs:
        for _ in range(2):
            step(*leaves).sum().backward()
    assert syncs.count == 0, f"{name}: {syncs}"
