"""``reparam bench`` lists and runs benchmark scripts."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from reparam.cli import _register
from reparam.cli.app import app
from reparam.cli.bench import benchmarks_dir, scripts

runner = CliRunner()


def test_lists_and_runs_scripts(tmp_path: Path) -> None:
    _register()
    (tmp_path / "bench_hello.py").write_text('"""Says hello."""\nimport sys\nprint("hello", *sys.argv[1:])\n')
    (tmp_path / "helper.py").write_text("")
    assert list(scripts(tmp_path)) == ["hello"]
    listing = runner.invoke(app, ["bench", "--dir", str(tmp_path)])
    assert listing.exit_code == 0 and "hello" in listing.output and "Says hello." in listing.output
    # the script's output goes to the terminal (subprocess); its exit status is ours
    failing = tmp_path / "bench_fail.py"
    failing.write_text("raise SystemExit(3)\n")
    result = runner.invoke(app, ["bench", "fail", "--dir", str(tmp_path)])
    assert result.exit_code == 3
    result = runner.invoke(app, ["bench", "nope", "--dir", str(tmp_path)])
    assert result.exit_code != 0 and "hello" in result.output


def test_checkout_benchmarks_are_found() -> None:
    folder = benchmarks_dir()
    assert folder is not None and (folder / "bench_gradient_stats.py").is_file()
