"""The README is the front door: its commands exist and every setting is documented."""

from __future__ import annotations

import re

from rag.settings import Settings

from .conftest import ROOT

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_documented_with_its_default() -> None:
    for name, field in Settings.flat_fields().items():
        row = next(
            (line for line in README.splitlines() if line.startswith(f"| `RAG_{name.upper()}` |")), None
        )
        assert row is not None, f"RAG_{name.upper()} is missing from the README's configuration table"
        default = field.default if field.default_factory is None else field.default_factory()
        shown = "unset" if default is None else f"`{default}`"
        assert f"| {shown} |" in row, f"README shows another default for RAG_{name.upper()}: {row}"


def test_the_two_commands_exist_and_ci_runs_the_test_command() -> None:
    quick_start = README.split("## Quick start", 1)[1].split("##", 1)[0]
    commands = re.findall(r"^(make \w+)", quick_start, re.MULTILINE)
    assert commands == ["make run", "make test"]
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^run: setup", makefile, re.MULTILINE)
    assert re.search(r"^test: setup", makefile, re.MULTILINE)
    assert "make test" in (ROOT / ".ci" / "run").read_text()
