"""openecos sandbox init: the summary table, the files, and refusals."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from openecos.cli import app
from openecos.sandbox import MANIFEST, load_sandbox

runner = CliRunner()


def test_init_writes_a_sandbox_and_prints_its_summary(tmp_path: Path) -> None:
    directory = tmp_path / "sbx"
    result = runner.invoke(
        app, ["sandbox", "init", str(directory), "--meters", "30", "--ecos-fraction", "0.5"]
    )
    assert result.exit_code == 0, result.stderr
    assert "SUPPLIER-A" in result.stdout and "OEAG" in result.stdout
    assert f"--keystore {directory / 'pki'}" in result.stdout
    sandbox = load_sandbox(directory)
    assert len(sandbox.meters) == 30
    assert sandbox.manifest.counts["ecos"] == 15
    assert (directory / MANIFEST).is_file()


def test_init_refuses_a_non_empty_directory_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    result = runner.invoke(app, ["sandbox", "init", str(tmp_path), "--meters", "1"])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "not an empty directory" in result.stderr
    assert not (tmp_path / MANIFEST).exists()


def test_init_refuses_an_ecos_fraction_above_one(tmp_path: Path) -> None:
    result = runner.invoke(app, ["sandbox", "init", str(tmp_path / "x"), "--ecos-fraction", "2"])
    assert result.exit_code == 2
