"""Installs as users install: build the wheel, install it into a fresh venv that holds only
torch, numpy and their dependencies, and run the core API there (tests/install_smoke.py).

The fresh venv is made without system site-packages; instead of copying torch (750 MB), its
site-packages gets symlinks to exactly the distributions in the dependency closure of torch and
numpy, taken from the running environment (the pinned torch wheel). pip then installs the wheel
with ``--no-index``, which also proves those two are all ``reparam`` requires. The smoke script
asserts that no optional package (rich, typer, matplotlib, scikit-learn, scipy, gymnasium) is
importable there.

About 30-60 s; marked ``install`` (deselect with ``-m "not install"`` for a quick local run;
CI runs it through ``make test``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

pytestmark = pytest.mark.install

ROOT = Path(__file__).resolve().parents[1]
SMOKE = Path(__file__).with_name("install_smoke.py")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.pop("PIP_CONSTRAINT", None)
    return env


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env or _env(), capture_output=True, text=True, timeout=300
    )


def _closure(*names: str) -> list[metadata.Distribution]:
    """The installed distributions ``names`` need at run time (extras and unmet markers left out)."""
    found: dict[str, metadata.Distribution] = {}
    todo = [canonicalize_name(n) for n in names]
    while todo:
        name = todo.pop()
        if name in found:
            continue
        dist = found[name] = metadata.distribution(name)
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(req.name))
    return list(found.values())


def _link_distributions(dists: list[metadata.Distribution], site: Path) -> None:
    for dist in dists:
        base = Path(str(dist.locate_file("")))
        tops = {Path(f).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in sorted(tops - {"__pycache__"}):
            if not (site / top).exists():
                (site / top).symlink_to(base / top)


@pytest.fixture(scope="module")
def bare_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("install")
    # Build from a copy of what the repository tracks for the package, so the build writes
    # nothing into the checkout.
    source = tmp / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    built = _run(sys.executable, "-m", "build", "--wheel", "--outdir", tmp / "dist", source, cwd=tmp)
    assert built.returncode == 0, built.stdout + built.stderr
    noise = [
        line
        for line in (built.stdout + built.stderr).splitlines()
        if "warning" in line.lower() or "deprecat" in line.lower()
    ]
    assert not noise, "the build printed warnings:\n" + "\n".join(noise)
    (wheel,) = (tmp / "dist").glob("reparam-*.whl")

    venv = tmp / "venv"
    made = _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    site = Path(
        _run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=tmp).stdout.strip()
    )
    _link_distributions(_closure("torch", "numpy"), site)
    # --isolated: no pip configuration or PIP_* variables; --no-index: nothing is downloaded,
    # so torch and numpy (already linked) must be all the wheel requires.
    installed = _run(
        sys.executable, "-m", "pip", "--isolated", "--python", python, "install", "--no-index", wheel, cwd=tmp
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return venv


def test_core_api_runs_on_torch_and_numpy_alone(bare_venv: Path, tmp_path: Path) -> None:
    script = shutil.copy(SMOKE, tmp_path / SMOKE.name)
    done = _run(bare_venv / "bin" / "python", script, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == "install-smoke-ok"


@pytest.mark.parametrize("command", [("python", "-m", "reparam"), ("reparam",)], ids=["python -m", "script"])
def test_command_line_without_cli_extra_prints_one_line(
    bare_venv: Path, tmp_path: Path, command: tuple[str, ...]
) -> None:
    done = _run(bare_venv / "bin" / command[0], *command[1:], "--help", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == "reparam: the reparam command line needs typer: pip install 'reparam[cli]'\n"


def _readme_block(heading: str) -> str:
    """The first ```python block after ``heading`` in the README, verbatim."""
    text = (ROOT / "README.md").read_text()
    after = text[text.index(heading) :]
    start = after.index("```python\n") + len("```python\n")
    return after[start : after.index("```", start)]


@pytest.mark.parametrize("heading", ["## 30-second example", "## Discrete latent variables"])
def test_readme_examples_run_verbatim_on_torch_and_numpy_alone(
    bare_venv: Path, tmp_path: Path, heading: str
) -> None:
    """A new user's first run: the README's example, copied as is, in the bare install."""
    script = tmp_path / "example.py"
    script.write_text(_readme_block(heading))
    done = _run(bare_venv / "bin" / "python", script, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    if heading.startswith("## 30"):
        assert "| pathwise |" in done.stdout, done.stdout
