#!/usr/bin/env python3
"""Generate static bash, zsh and fish completion scripts for `decart` from the Typer app itself.

Static scripts complete without starting Python (instant, even with aiortc installed): the
command tree, every option, option values with fixed choices (``--mirror``, ``--codec``, model
names from the catalogue, camera keywords) and file paths for file-taking options.
``make completions`` rewrites completions/; tests/test_completions.py fails when they are stale.

Usage: gen_completions.py [--check] [--out DIR]
"""

from __future__ import annotations

import argparse
import enum
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HEADER = "generated from the decart app by `make completions` (scripts/gen_completions.py); do not edit"
FILE_OPTIONS = {"--record", "--input", "--image", "--prompts", "--log-file", "--api-key-file", "--endpoints"}


@dataclass
class Node:
    """One command or group: its path, help, options and children."""

    path: list[str]
    help: str
    options: list[tuple[list[str], str, list[str] | None, bool]] = field(default_factory=list)
    # (names, help, choices (None = free value, [] = flag), takes_file)
    args_choices: list[str] = field(default_factory=list)
    children: dict[str, Node] = field(default_factory=dict)


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0].strip() if (text or "").strip() else ""


def _option_choices(param: Any) -> list[str] | None:
    from decart_cli.core import catalog

    names = list(param.opts) + list(param.secondary_opts)
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return []
    if "--model" in names:
        return catalog.all_names()
    if "--camera" in names:
        return ["front", "back", "test"]
    kind = getattr(param, "type", None) or getattr(param, "bare_type", None)
    choices = getattr(kind, "choices", None)
    if choices:
        return [str(getattr(c, "value", c)) for c in choices]
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return [str(m.value) for m in kind]
    return None


def build_tree() -> Node:
    """Walk the Click command tree behind the Typer app."""
    import typer

    from decart_cli.app import app
    from decart_cli.core import catalog

    def walk(cmd: Any, path: list[str]) -> Node:
        node = Node(path, _first_line(cmd.help or cmd.short_help))
        for param in cmd.params:
            if getattr(param, "hidden", False) or param.param_type_name != "option":
                if param.param_type_name == "argument" and param.name == "name":
                    node.args_choices = catalog.all_names()
                continue
            names = [
                n
                for n in [*param.opts, *param.secondary_opts]
                if n not in ("--install-completion", "--show-completion")
            ]
            if not names:
                continue
            takes_file = any(n in FILE_OPTIONS for n in names)
            node.options.append((names, _first_line(param.help), _option_choices(param), takes_file))
        node.options.append((["--help", "-h"], "Show help and exit.", [], False))
        for name, sub in sorted(getattr(cmd, "commands", {}).items()):
            if not getattr(sub, "hidden", False):
                node.children[name] = walk(sub, [*path, name])
        return node

    return walk(typer.main.get_command(app), ["decart"])


def _nodes(node: Node) -> list[Node]:
    out = [node]
    for child in node.children.values():
        out += _nodes(child)
    return out


def _words(node: Node) -> str:
    words = [n for names, _, _, _ in node.options for n in names] + list(node.children) + node.args_choices
    return " ".join(words)


def _q(text: str) -> str:
    return text.replace("'", "'\\''")


@dataclass(frozen=True)
class Dialect:
    """What differs between the bash and zsh scripts; the dispatch logic is shared (:func:`_case_script`)."""

    head: list[str]  # comment lines, function opening and locals
    first_word: int  # index of the first word after `decart` (bash COMP_WORDS: 1; zsh words, 1-based: 2)
    count: str  # the index of the word being completed
    word: str  # the i-th word
    path: str  # the variable holding the command path (zsh reserves $path)
    files: str  # complete file names, then return
    choices: str  # complete a fixed list ({words}), then return
    nothing: str  # complete nothing (an option value with no choices), then return
    words: str  # complete the words of a command node ({words})
    tail: list[str]  # function closing and registration


def _case_script(tree: Node, d: Dialect) -> str:
    """Walk the words typed so far to a command path, then complete option values or node words."""
    nodes = _nodes(tree)
    transitions = [f'"{" ".join(n.path[:-1])}:{n.path[-1]}"' for n in nodes if len(n.path) > 1]
    v = d.path
    lines = [
        *d.head,
        f"    for ((i = {d.first_word}; i < {d.count}; i++)); do",
        f'        w="{d.word}"',
        f'        case "${v}:$w" in',
        f'            {"|".join(transitions)}) {v}="${v} $w" ;;',
        "        esac",
        "    done",
        f'    case "${v}:$prev" in',
    ]
    for n in nodes:
        p = " ".join(n.path)
        for names, _, choices, takes_file in n.options:
            pat = "|".join(f'"{p}:{name}"' for name in names)
            if takes_file:
                lines.append(f"        {pat}) {d.files} ;;")
            elif choices:
                lines.append(f"        {pat}) {d.choices.format(words=' '.join(choices))} ;;")
            elif choices is None:
                lines.append(f"        {pat}) {d.nothing} ;;")
    lines += ["    esac", f'    case "${v}" in']
    for n in nodes:
        lines.append(f'        "{" ".join(n.path)}") {d.words.format(words=_words(n))} ;;')
    lines += ["    esac", *d.tail, ""]
    return "\n".join(lines)


BASH = Dialect(
    head=[
        f"# bash completion for decart — {HEADER}.",
        "# Install: source this file from ~/.bashrc, or copy it to ~/.local/share/bash-completion/completions/decart",
        "_decart() {",
        '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}" path="decart" w i',
    ],
    first_word=1,
    count="COMP_CWORD",
    word="${COMP_WORDS[i]}",
    path="path",
    files='COMPREPLY=($(compgen -f -- "$cur")); return',
    choices="COMPREPLY=($(compgen -W '{words}' -- \"$cur\")); return",
    nothing="COMPREPLY=(); return",
    words="COMPREPLY=($(compgen -W '{words}' -- \"$cur\"))",
    tail=["}", "complete -o default -F _decart decart"],
)

ZSH = Dialect(
    head=[
        "#compdef decart",
        f"# zsh completion for decart — {HEADER}.",
        "# Install: copy to a directory on $fpath under the name _decart (e.g. ~/.zfunc/_decart), then run compinit.",
        "_decart() {",
        '    local path_="decart" prev="${words[CURRENT-1]}" w i',
    ],
    first_word=2,
    count="CURRENT",
    word="${words[i]}",
    path="path_",
    files="_files; return",
    choices="compadd -- {words}; return",
    nothing="return",
    words="compadd -- {words}",
    tail=["}", '_decart "$@"'],
)


def bash(tree: Node) -> str:
    """A bash completion function registered with `complete -F`."""
    return _case_script(tree, BASH)


def zsh(tree: Node) -> str:
    """A zsh completion function (#compdef) with the same logic as the bash one."""
    return _case_script(tree, ZSH)


def fish(tree: Node) -> str:
    """fish `complete` rules, one per command and option."""
    lines = [
        f"# fish completion for decart — {HEADER}.",
        "# Install: copy to ~/.config/fish/completions/decart.fish",
        "complete -c decart -f",
    ]
    for n in _nodes(tree):
        depth = len(n.path) - 1
        if depth == 0:
            cond = "__fish_use_subcommand"
        else:
            seen = " ".join(f"; and __fish_seen_subcommand_from {w}" for w in n.path[1:])
            cond = seen.removeprefix("; and ")
            if n.children:
                cond += "; and not __fish_seen_subcommand_from " + " ".join(n.children)
        for name, child in n.children.items():
            lines.append(f"complete -c decart -n '{cond}' -a {name} -d '{_q(child.help)}'")
        if n.args_choices:
            lines.append(f"complete -c decart -n '{cond}' -a '{' '.join(n.args_choices)}'")
        for names, help_, choices, takes_file in n.options:
            spec = " ".join(f"-l {x[2:]}" if x.startswith("--") else f"-s {x[1:]}" for x in names)
            extra = (
                " -F -r"
                if takes_file
                else (f" -x -a '{' '.join(choices)}'" if choices else (" -x" if choices is None else ""))
            )
            lines.append(f"complete -c decart -n '{cond}' {spec}{extra} -d '{_q(help_)}'")
    return "\n".join(lines) + "\n"


GENERATORS = {"decart.bash": bash, "decart.zsh": zsh, "decart.fish": fish}


def render() -> dict[str, str]:
    """File name → content for every shell."""
    tree = build_tree()
    return {name: gen(tree) for name, gen in GENERATORS.items()}


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
