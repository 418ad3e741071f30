"""Registry of named problems. Each module below registers its problems on import."""

from reparam.problems import (
    classic,  # noqa: F401
    continuous,  # noqa: F401
    discrete,  # noqa: F401
    discrete_vae_benchmark,  # noqa: F401
    logistic_regression,  # noqa: F401
    policy,  # noqa: F401
    vae,  # noqa: F401
)
from reparam.problems.base import (
    PROBLEMS,
    RUNNERS,
    CompareRequest,
    ProblemInstance,
    get_problem,
    register_problem,
    register_runner,
)

__all__ = [
    "PROBLEMS",
    "RUNNERS",
    "CompareRequest",
    "ProblemInstance",
    "get_problem",
    "register_problem",
    "register_runner",
]
