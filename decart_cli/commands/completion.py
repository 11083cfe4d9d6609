"""``decart completion bash|zsh|fish``: print a static completion script for the shell.

The scripts are generated from the running command tree, so they complete exactly what this
version accepts: commands, options, option values with fixed choices (``--mirror``, ``--codec``,
``--transport``: any option whose metavar lists its values as ``a|b|c``; model names as offered —
deprecated names and retired models are accepted but not offered; camera keywords) and file names
for file-taking options only. They run without starting Python (instant, even with aiortc
installed). ``pipx install`` users get them with::

    decart completion bash > ~/.local/share/bash-completion/completions/decart

``make completions`` (``scripts/gen_completions.py``) writes the same scripts to ``completions/``.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer

from decart_cli.errors import UsageError
from decart_cli.ui.console import streams

__all__ = ["FILE_OPTIONS", "SHELLS", "register", "render"]

SHELLS = ("bash", "zsh", "fish")
FILE_OPTIONS = {
    "--record",
    "--input",
    "--image",
    "--prompts",
    "--log-file",
    "--api-key-file",
    "--endpoints",
    "--ca-bundle",
}
HEADER = "generated from the decart app (`decart completion SHELL`, or `make completions`); do not edit"


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


_WORD = re.compile(r"[a-z0-9][a-z0-9.+-]*")


def _metavar_choices(metavar: str | None) -> list[str] | None:
    """``"auto|on|off"`` → ``["auto", "on", "off"]``: a metavar listing lower-case literal values
    (``"KEY|-"`` or ``"JSON|FILE"`` name kinds of value, not values, and give ``None``)."""
    parts = (metavar or "").split("|")
    if len(parts) < 2 or not all(_WORD.fullmatch(p) for p in parts):
        return None
    return parts


def _option_choices(param: Any) -> list[str] | None:
    from decart_cli.core import catalog

    names = list(param.opts) + list(param.secondary_opts)
    if getattr(param, "is_flag", False) or getattr(param, "count", False):
        return []
    if "--model" in names:
        return catalog.offered_names()  # deprecated names and retired models are accepted, not offered
    if "--camera" in names:
        return ["front", "back", "test"]
    kind = getattr(param, "type", None) or getattr(param, "bare_type", None)
    choices = getattr(kind, "choices", None)
    if choices:
        return [str(getattr(c, "value", c)) for c in choices]
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return [str(m.value) for m in kind]
    return _metavar_choices(getattr(param, "metavar", None))


def build_tree(root: Any) -> Node:
    """Walk the Click command tree ``root`` (``typer.main.get_command(app)``, or the running root)."""
    from decart_cli.core import catalog

    def walk(cmd: Any, path: list[str]) -> Node:
        node = Node(path, _first_line(cmd.help or cmd.short_help))
        for param in cmd.params:
            if getattr(param, "hidden", False) or param.param_type_name != "option":
                if param.param_type_name == "argument" and param.name == "name":
                    node.args_choices = catalog.offered_names()
                elif param.param_type_name == "argument":
                    node.args_choices = _metavar_choices(getattr(param, "metavar", None)) or []
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

    return walk(root, ["decart"])


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
        "# Install: decart completion bash > ~/.local/share/bash-completion/completions/decart",
        "_decart() {",
        '    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}" path="decart" w i',
    ],
    first_word=1,
    count="COMP_CWORD",
    word="${COMP_WORDS[i]}",
    path="path",
    files='compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")); return',
    choices="COMPREPLY=($(compgen -W '{words}' -- \"$cur\")); return",
    nothing="COMPREPLY=(); return",
    words="COMPREPLY=($(compgen -W '{words}' -- \"$cur\"))",
    # No "-o default": an option value without choices (--prompt TEXT) must not complete file names.
    tail=["}", "complete -F _decart decart"],
)

ZSH = Dialect(
    head=[
        "#compdef decart",
        f"# zsh completion for decart — {HEADER}.",
        "# Install: decart completion zsh > ~/.zfunc/_decart (a directory on $fpath), then run compinit.",
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
        "# Install: decart completion fish > ~/.config/fish/completions/decart.fish",
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


def render(root: Any) -> dict[str, str]:
    """File name → content for every shell, for the Click command tree ``root``."""
    tree = build_tree(root)
    return {name: gen(tree) for name, gen in GENERATORS.items()}


def completion(
    ctx: typer.Context,
    shell: Annotated[str, typer.Argument(metavar="bash|zsh|fish", help="The shell to print the script for.")],
) -> None:
    """Print a completion script for bash, zsh or fish (redirect it where your shell loads completions).

    bash: decart completion bash > ~/.local/share/bash-completion/completions/decart
    zsh:  decart completion zsh > ~/.zfunc/_decart   (with fpath=(~/.zfunc $fpath) before compinit)
    fish: decart completion fish > ~/.config/fish/completions/decart.fish
    """
    name = shell.strip().lower()
    if name not in SHELLS:
        raise UsageError(f"no completion for shell {shell!r}", hint="use one of: bash, zsh, fish")
    script = render(ctx.find_root().command)[f"decart.{name}"]
    streams.stdout.write(script)
    streams.stdout.flush()


def register(root: typer.Typer) -> None:
    """Attach ``completion`` to the root app."""
    root.command("completion")(completion)
