"""The plain-Python broadcast agrees with torch's and names the sizes that do not broadcast."""

from __future__ import annotations

import pytest
import torch

from reparam.distributions._shapes import broadcast_shape


@pytest.mark.parametrize(
    "shapes", [((10000, 5), (5,)), ((3, 1), (1, 4), ()), ((), ()), ((2, 1, 3), (4, 1)), ((0,), (1,))]
)
def test_matches_torch(shapes: tuple[tuple[int, ...], ...]) -> None:
    assert broadcast_shape(*shapes) == torch.broadcast_shapes(*shapes)


def test_incompatible_sizes_are_named() -> None:
    with pytest.raises(ValueError, match="3 vs 4"):
        broadcast_shape((3,), (4,))
