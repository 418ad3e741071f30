"""Every Python example in the README and the documentation runs as written.

Collected from README.md and docs/**/*.md:

* fenced ```` ```python ```` blocks, each run on its own in a fresh interpreter;
* the ``{code-cell}`` cells of a MyST notebook page (tutorials, concepts), run together in
  order in one fresh interpreter, as the docs build runs them.

A block that is deliberately not runnable is preceded by the line ``<!-- docs: no-run -->``;
``test_no_run_markers_are_rare`` keeps those to a handful. Each example runs in an empty
temporary directory with ``MPLBACKEND=Agg`` and a timeout.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NO_RUN = "<!-- docs: no-run -->"
FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S
)
CODE_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(?P<body>.*?)^```[ \t]*$", re.M | re.S)
TIMEOUT_S = 240


@dataclass(frozen=True)
class Example:
    name: str
    code: str


def _pages() -> list[Path]:
    docs = sorted(p for p in (ROOT / "docs").rglob("*.md") if "figures" not in p.parts)
    return [ROOT / "README.md", *docs]


def _strip_cell_options(body: str) -> str:
    """Drop MyST cell options (``:tags: [...]`` lines and a ``---`` front block)."""
    lines = body.splitlines()
    if lines and lines[0].strip() == "---":
        end = lines.index("---", 1)
        lines = lines[end + 1 :]
    return "\n".join(line for line in lines if not re.match(r"^:\w[\w-]*:", line))


def collect() -> tuple[list[Example], list[str]]:
    examples: list[Example] = []
    skipped: list[str] = []
    for page in _pages():
        text = page.read_text()
        rel = page.relative_to(ROOT).as_posix()
        cells = [_strip_cell_options(m["body"]) for m in CODE_CELL.finditer(text)]
        if cells:
            examples.append(Example(f"{rel} (notebook, {len(cells)} cells)", "\n\n".join(cells)))
        for k, m in enumerate(FENCE.finditer(text)):
            if m["info"].strip().split(" ")[0] not in ("python", "py"):
                continue
            before = text[: m.start()].rstrip().splitlines()[-1:] or [""]
            name = f"{rel} block {k + 1} (line {text[: m.start()].count(chr(10)) + 1})"
            if before[0].strip() == NO_RUN:
                skipped.append(name)
                continue
            body = "\n".join(line[len(m["indent"]) :] for line in m["body"].splitlines())
            examples.append(Example(name, body))
    return examples, skipped


EXAMPLES, SKIPPED = collect()


def test_examples_were_found() -> None:
    # The README alone has the 30-second example; the tutorials are notebooks.
    assert any(e.name.startswith("README.md") for e in EXAMPLES)
    assert sum("notebook" in e.name for e in EXAMPLES) >= 7, [e.name for e in EXAMPLES]


def test_no_run_markers_are_rare() -> None:
    assert len(SKIPPED) <= 2, f"examples marked {NO_RUN}: {SKIPPED}; make them runnable"


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_example_runs(example: Example, tmp_path: Path) -> None:
    env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"}
    script = tmp_path / "example.py"
    script.write_text(example.code)
    try:
        proc = subprocess.run(
            [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
            timeout=TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{example.name} took more than {TIMEOUT_S} s")
    stderr = proc.stderr[-4000:]
    assert proc.returncode == 0, f"{example.name} failed:\n{example.code}\n--- stderr ---\n{stderr}"
