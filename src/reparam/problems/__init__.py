"""Registry of named problems. Each module below registers its problems on import."""

from reparam.problems.base import (
    PROBLEMS,
    ProblemInstance,
    get_problem,
    register_problem,
)

__all__ = ["PROBLEMS", "ProblemInstance", "get_problem", "register_problem"]
