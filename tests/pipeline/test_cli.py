from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.cli import build_parser, main

pytestmark = pytest.mark.unit


def _subcommand_paths(parser, prefix=()):  # type: ignore[no-untyped-def]
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            for name, sub in action.choices.items():
                yield (*prefix, name)
                yield from _subcommand_paths(sub, (*prefix, name))


def test_help_works_on_every_level(capsys: pytest.CaptureFixture[str]) -> None:
    paths = list(_subcommand_paths(build_parser()))
    assert ("cloud", "up") in paths
    assert ("provision",) in paths
    # The entry point once in a process of its own; every level in this one (a process per
    # level cost minutes on a loaded machine and tested the same parser).
    result = subprocess.run(
        [str(Path(sys.executable).with_name("riskstream")), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "usage: riskstream" in result.stdout
    for path in [(), *paths]:
        with pytest.raises(SystemExit) as exited:
            main([*path, "--help"])
        out = capsys.readouterr()
        assert exited.value.code in (0, None), (path, out.err)
        assert "usage: riskstream" in out.out, path


def test_group_without_subcommand_prints_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cloud"]) == 2
    assert "up" in capsys.readouterr().out


def test_bad_configuration_is_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("RISKSTREAM_TARGET", "azure")
    assert main(["provision"]) == 2
    assert "RISKSTREAM_TARGET='azure'" in caplog.text
