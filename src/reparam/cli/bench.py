"""``reparam bench``: list or run the benchmark scripts under ``benchmarks/``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import typer

from reparam.cli.app import app


def benchmarks_dir() -> Path | None:
    """``benchmarks/`` of the source checkout this package runs from (editable install), or
    of the current directory."""
    for candidate in (Path(__file__).resolve().parents[3] / "benchmarks", Path.cwd() / "benchmarks"):
        if candidate.is_dir():
            return candidate
    return None


def scripts(folder: Path) -> dict[str, Path]:
    """Benchmark name -> script: ``bench_NAME.py`` is ``NAME``."""
    return {p.stem.removeprefix("bench_"): p for p in sorted(folder.glob("bench_*.py"))}


def _summary(path: Path) -> str:
    for line in path.read_text().splitlines():
        text = line.strip().strip('"').strip("'").strip()
        if text and not text.startswith("#!"):
            return text
    return ""


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench(
    ctx: typer.Context,
    name: str = typer.Argument(None, help="Benchmark to run (bench_NAME.py); omit to list them."),
    all_: bool = typer.Option(False, "--all", help="Run every benchmark in turn."),
    folder: Path | None = typer.Option(None, "--dir", help="Benchmarks folder (default: the checkout's)."),
) -> None:
    """List the benchmarks, or run one (extra arguments go to the script) and print its tables."""
    folder = folder or benchmarks_dir()
    if folder is None or not folder.is_dir():
        raise typer.BadParameter(
            "no benchmarks/ folder found: run from a source checkout of reparam or pass --dir PATH",
            param_hint="--dir",
        )
    found = scripts(folder)
    if name is None and not all_:
        typer.echo(f"benchmarks in {folder} (run: reparam bench NAME [ARGS])")
        for key, path in found.items():
            typer.echo(f"  {key:<24} {_summary(path)}")
        return
    chosen = list(found) if all_ else [name.removeprefix("bench_").removesuffix(".py")]
    unknown = [n for n in chosen if n not in found]
    if unknown:
        raise typer.BadParameter(f"unknown benchmark {unknown[0]!r}; choose from: {', '.join(found)}")
    status = 0
    for key in chosen:
        typer.echo(f"$ {Path(sys.executable).name} {found[key].name} {' '.join(ctx.args)}".rstrip())
        status = max(status, subprocess.call([sys.executable, str(found[key]), *ctx.args]))
    raise typer.Exit(status)
