"""Shared test settings: deterministic seeds, double precision helpers, data paths."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from seeds import seed_offset, seeded

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
BINARIZED_MNIST = SHARED_DATA / "binarized_mnist.npz"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--seed-offset",
        type=int,
        default=None,
        help="add this to every test seed (also REPARAM_TEST_SEED); the suite must pass under any offset",
    )


def pytest_configure(config: pytest.Config) -> None:
    option = config.getoption("--seed-offset")
    if option is not None:
        os.environ["REPARAM_TEST_SEED"] = str(option)


def pytest_report_header(config: pytest.Config) -> str:
    return f"reparam test seed offset: {seed_offset()} (--seed-offset N or REPARAM_TEST_SEED=N)"


@pytest.fixture(autouse=True)
def _seed_and_one_thread() -> Iterator[None]:
    """Every test starts from the same seed (so statistical thresholds are reproducible) on one
    intra-op thread: the tests' tensors are small, and on a busy 2-core machine a second
    spin-waiting thread made them up to 15x slower (a 2x2 torch.tril took 20 ms with two
    threads under load, 2 us with one). The setting is restored afterwards, which also undoes
    code under test that changes it."""
    torch.manual_seed(seeded(0))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    # torch's default argument validation (on) for every test: the first torch.compile in a
    # process turns it off for the rest of the process (dynamo's TorchPatcher), which made tests
    # that expect a validation error depend on whether a compile test ran before them.
    validating = torch.distributions.Distribution._validate_args
    torch.distributions.Distribution.set_default_validate_args(True)
    yield
    torch.distributions.Distribution.set_default_validate_args(validating)
    torch.set_num_threads(threads)


@pytest.fixture
def mnist_path() -> Path:
    if not BINARIZED_MNIST.is_file():
        pytest.skip(f"{BINARIZED_MNIST} not present")
    return BINARIZED_MNIST


def independent_estimates(make_q, f, estimator, values, num_samples=1, repeats=4000):
    """``repeats`` independent gradient estimates in one vectorised call.

    Each scalar parameter in ``values`` is replicated into a leaf of shape ``(repeats,)``, so
    ``q = make_q(*leaves)`` has batch shape ``(repeats,)``; ``f`` acts elementwise and returns
    costs shaped ``(num_samples, repeats)``, so every batch element is its own estimate (this
    also exercises per-element credit assignment). Returns one ``(repeats,)`` tensor of
    gradient estimates per parameter.
    """
    import reparam as rp

    leaves = [torch.full((repeats,), float(v), dtype=torch.float64, requires_grad=True) for v in values]
    value = rp.expect(f, make_q(*leaves), estimator=estimator, num_samples=num_samples)
    value.sum().backward()
    return [leaf.grad for leaf in leaves]


def assert_unbiased(estimates, exact, threshold=5.0):
    """|mean - exact| < threshold standard errors of the mean (a z-test)."""
    mean = estimates.mean()
    stderr = estimates.std() / estimates.numel() ** 0.5
    z = float((mean - exact) / stderr)
    assert abs(z) < threshold, f"mean {float(mean):.5g} vs exact {float(exact):.5g}: z = {z:.2f}"
    return z


@pytest.fixture
def estimates():
    return independent_estimates


@pytest.fixture
def unbiased():
    return assert_unbiased


@pytest.fixture
def validation_off_as_under_compile() -> Iterator[None]:
    """torch.compile turns torch's distribution argument validation off for the process (its
    checks read tensor values); the autouse fixture above turns it back on for every test, so
    compile tests use this one (``pytestmark = pytest.mark.usefixtures(...)``) to run the way
    torch.compile runs them."""
    torch.distributions.Distribution.set_default_validate_args(False)
    yield
    torch.distributions.Distribution.set_default_validate_args(True)
