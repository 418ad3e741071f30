"""The reliability diagram is written as a PNG."""

from __future__ import annotations

from pathlib import Path

import torch

from reparam.nn import reliability_diagram


def test_writes_png(tmp_path: Path) -> None:
    probs = torch.softmax(torch.randn(200, 3), -1)
    labels = torch.randint(0, 3, (200,))
    path = reliability_diagram({"a": probs, "b": probs.flip(-1)}, labels, tmp_path / "sub" / "rel.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
