#!/usr/bin/env python3
"""Write the static bash, zsh and fish completion scripts of `decart` to completions/.

The generator lives in the package (``decart_cli/commands/completion.py``, also behind
``decart completion SHELL`` for installs without this repository); this script runs it over the app
and writes (or, with ``--check``, compares) the files. ``make completions`` runs it;
tests/test_completions.py fails when they are stale.

Usage: gen_completions.py [--check] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def render() -> dict[str, str]:
    """File name → content for every shell, from the app."""
    import typer

    from decart_cli.app import app
    from decart_cli.commands.completion import render as render_tree

    return render_tree(typer.main.get_command(app))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if completions/ is stale; write nothing")
    parser.add_argument("--out", type=Path, default=ROOT / "completions")
    args = parser.parse_args()
    stale = []
    for name, content in render().items():
        path = args.out / name
        if path.exists() and path.read_text(encoding="utf-8") == content:
            continue
        stale.append(name)
        if not args.check:
            args.out.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
    if args.check and stale:
        print(f"stale completions: {', '.join(stale)}; run `make completions`", file=sys.stderr)
        return 1
    print("completions " + ("current" if not stale else f"written: {', '.join(stale)}"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
