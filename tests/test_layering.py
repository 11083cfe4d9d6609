"""Layering rules of STYLE.md, checked by parsing imports (no module is executed)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "decart_cli"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def _modules(sub: str = "") -> list[Path]:
    return sorted((PKG / sub).rglob("*.py"))


def test_core_uses_only_the_standard_library() -> None:
    """decart_cli/core imports nothing outside the stdlib (and decart_cli.core/errors)."""
    allowed_internal = ("decart_cli.core", "decart_cli.errors")
    for path in _modules("core"):
        for name in _imports(path):
            top = name.split(".")[0]
            if top == "decart_cli":
                assert name.startswith(allowed_internal), f"{path.name} imports {name}"
            else:
                assert top in sys.stdlib_module_names, f"{path.name} imports non-stdlib {name}"
    assert _modules("core"), "core package is empty"


def test_rich_only_in_ui() -> None:
    """Only decart_cli/ui imports rich."""
    for path in _modules():
        if "ui" in path.relative_to(PKG).parts:
            continue
        assert not any(n.split(".")[0] == "rich" for n in _imports(path)), path


def test_cv2_only_in_media_and_emulator() -> None:
    """OpenCV is confined to media/ and emulator/."""
    for path in _modules():
        part = path.relative_to(PKG).parts[0]
        if part in ("media", "emulator"):
            continue
        assert "cv2" not in {n.split(".")[0] for n in _imports(path)}, path


def test_emulator_never_imports_commands() -> None:
    """The emulator is usable without the CLI layer."""
    for path in _modules("emulator"):
        assert not any(n.startswith("decart_cli.commands") for n in _imports(path)), path


def test_startup_does_not_import_heavy_modules() -> None:
    """Importing the app (what --help and completion do) loads neither aiortc, av, cv2 nor numpy."""
    code = (
        "import sys, decart_cli.app; "
        "heavy = [m for m in ('aiortc', 'av', 'cv2', 'numpy', 'aiohttp', 'httpx', 'websockets') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"heavy modules imported at startup: {out}"


def test_session_driver_imports_no_media_library() -> None:
    """The one session driver and its transport seam import neither aiortc, av, cv2, numpy nor livekit."""
    media = {"aiortc", "av", "cv2", "numpy", "livekit"}
    for name in ("session.py", "transport.py", "__init__.py"):
        path = PKG / "realtime" / name
        assert not {n.split(".")[0] for n in _imports(path)} & media, path


def test_livekit_sdk_stays_in_its_transport_and_the_emulator() -> None:
    """Only realtime/livekit.py (the client) and emulator/ (the stand-in) import the livekit packages."""
    allowed = {PKG / "realtime" / "livekit.py"}
    for path in _modules():
        if path in allowed or path.relative_to(PKG).parts[0] == "emulator":
            continue
        assert "livekit" not in {n.split(".")[0] for n in _imports(path)}, path


def test_runtime_imports_run_one_way() -> None:
    """The runner's helpers (input, view, host, options, outputs, endings, leave) never import the runner."""
    for name in ("input.py", "view.py", "host.py", "options.py", "outputs.py", "endings.py", "leave.py"):
        path = PKG / "runtime" / name
        assert "decart_cli.runtime.runner" not in _imports(path), path


README = PKG.parent / "README.md"


def test_the_readme_layout_names_every_module() -> None:
    """Every package and module of decart_cli is named in the README's layout block, so the map stays true."""
    import re

    text = README.read_text(encoding="utf-8")
    opening = text.index("```", text.index("\nLayout ("))
    block = text[opening + 3 : text.index("```", opening + 3)]
    words = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", block))
    missing = []
    for path in _modules():
        rel = path.relative_to(PKG)
        names = [*rel.parts[:-1], *([] if path.stem in ("__init__", "__main__") else [path.stem])]
        if any(name not in words for name in names):
            missing.append(str(rel))
    assert missing == [], f"README.md's layout does not name: {', '.join(missing)}"
