"""Packaging metadata that keeps `make install` quiet (no setuptools license deprecation box)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"


def test_license_is_an_spdx_expression_with_a_setuptools_that_reads_it() -> None:
    """`license` is an SPDX string (PEP 639), not the deprecated table that printed a 30-line box per build
    step, and the build requires a setuptools that understands it (>= 77); no License classifier competes."""
    data = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))
    assert data["project"]["license"] == "MIT"
    requires = data["build-system"]["requires"]
    setuptools = [r for r in requires if r.startswith("setuptools")]
    assert len(setuptools) == 1
    match = re.fullmatch(r"setuptools>=(\d+)(?:\.\d+)*", setuptools[0].replace(" ", ""))
    assert match is not None and int(match.group(1)) >= 77
    assert not [c for c in data["project"].get("classifiers", []) if c.startswith("License ::")]
