"""Click's usage errors come out as the one-line `error:` plus `hint:` the README promises (exit 2)."""

from __future__ import annotations

import pytest
from cli import run_cli


@pytest.mark.parametrize(
    ("args", "error", "hint"),
    [
        (["stream", "--nope"], "error: no such option: --nope", "hint: see 'decart stream --help'"),
        (
            ["stream", "--duration", "abc"],
            "error: invalid value for '--duration' / '-d'",
            "hint: see 'decart stream --help'",
        ),
        (["frob"], "error: no such command 'frob'.", "hint: see 'decart --help'"),
        (["token", "--ttl"], "error: option '--ttl' requires an argument.", "hint: see 'decart token --help'"),
        (
            ["--debug", "token", "create", "--ttl"],
            "error: option '--ttl' requires an argument.",
            "hint: see 'decart token create --help'",
        ),
        (["models", "show"], "error: missing argument 'NAME'.", "hint: see 'decart models show --help'"),
    ],
)
def test_usage_errors_are_one_line_and_a_hint(
    monkeypatch: pytest.MonkeyPatch, args: list[str], error: str, hint: str
) -> None:
    """Bad options, values, commands and missing arguments: exactly two lines, error then hint, exit 2 (was 4 lines)."""
    r = run_cli(args, monkeypatch)
    assert r.code == 2 and r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 2, r.stderr
    assert lines[0].startswith(error) and lines[1] == hint
    assert "Usage:" not in r.stderr and "Try '" not in r.stderr
