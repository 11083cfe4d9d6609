"""`decart stream` option validation: bad input is rejected before connecting, one line, exit 2."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import pytest
from cli import run_cli

from decart_cli.errors import ExitStatus
from decart_cli.runtime.input import MAX_IMAGE_BYTES, image_kind, load_image

# Nothing listens here: a test that got past validation would fail to connect, not hang.
DEAD = ["--realtime-url", "ws://127.0.0.1:9", "--api-key-file"]


def png_bytes(width: int = 4, height: int = 4) -> bytes:
    """A tiny valid PNG (grey), built with the stdlib."""
    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


@pytest.fixture
def key_file(tmp_path: Path) -> str:
    path = tmp_path / "key"
    path.write_text("test-key-123456\n")
    path.chmod(0o600)
    return str(path)


def stream(args: list[str], key_file: str, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    return run_cli(["stream", "--camera", "test", "--no-window", *args, *DEAD, key_file], monkeypatch)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--model", "lucy-2.2"], "unknown model 'lucy-2.2'"),
        (["--camera", "sideways"], "--camera 'sideways' is not a camera"),
        (["--mirror", "maybe"], "--mirror 'maybe' is not one of auto, on, off"),
        (["--codec", "av1"], "--codec 'av1' is not one of h264, vp8, vp9"),
        (["--transport", "webrtc", "--codec", "vp9"], "--codec 'vp9' is not available with --transport webrtc"),
        (["--transport", "pigeon"], "--transport 'pigeon' is not one of livekit, webrtc"),
        (["--speed", "turbo"], "--speed 'turbo' is not one of fast"),
        (["--duration", "0"], "--duration 0 must be more than 0 seconds"),
        (["--duration", "-3"], "--duration -3 must be more than 0"),
        (["--prompt", "   "], "--prompt is empty"),
        (["--prompt", ""], "--prompt is empty"),
        (["--image", "/nonexistent/face.png"], "--image '/nonexistent/face.png' cannot be read"),
        (["--record", "out.avi"], "unsupported extension '.avi'"),
        (["--record", "/nonexistent-dir/out.mp4"], "does not exist"),
        (["--prompts", "/nonexistent/p.txt"], "--prompts '/nonexistent/p.txt' cannot be read"),
    ],
)
def test_bad_values_exit_2_with_one_line(
    args: list[str], fragment: str, key_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each bad value is named in a single error line and nothing is connected (exit 2)."""
    result = stream(args, key_file, monkeypatch)
    assert result.code == ExitStatus.USAGE, result.stderr
    first = result.stderr.splitlines()[0]
    assert first.startswith("error: ") and fragment in first, result.stderr
    assert result.stdout == ""


def test_unknown_model_suggests(key_file: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """An unknown model gets a did-you-mean hint."""
    result = stream(["--model", "lucy-2.l"], key_file, monkeypatch)
    assert result.code == ExitStatus.USAGE
    assert "did you mean" in result.stderr and "'lucy-2.1'" in result.stderr


def test_non_image_and_oversized_image(tmp_path: Path, key_file: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A renamed text file and an image over 10 MiB are refused before connecting."""
    fake = tmp_path / "face.png"
    fake.write_text("not an image")
    result = stream(["--image", str(fake)], key_file, monkeypatch)
    assert result.code == ExitStatus.USAGE
    assert f"--image '{fake}' is not a PNG, JPEG or WebP image" in result.stderr
    big = tmp_path / "big.png"
    big.write_bytes(png_bytes() + b"\x00" * MAX_IMAGE_BYTES)
    result = stream(["--image", str(big)], key_file, monkeypatch)
    assert result.code == ExitStatus.USAGE
    assert "over the 10 MiB limit" in result.stderr


@pytest.mark.parametrize(("width", "height"), [(16000, 16000), (20000, 100)])
def test_image_declaring_too_many_pixels_is_refused_before_decoding(
    tmp_path: Path, key_file: str, monkeypatch: pytest.MonkeyPatch, width: int, height: int
) -> None:
    """A small PNG declaring 16000×16000 (or a 20000-pixel side) is refused from its header, naming the file and
    its size; nothing is decoded."""
    import decart_cli.runtime.input as ri

    bomb = bytearray(png_bytes(4, 4))
    bomb[16:24] = struct.pack(">II", width, height)
    path = tmp_path / "bomb.png"
    path.write_bytes(bytes(bomb))
    decoded: list[bytes] = []
    monkeypatch.setattr(ri, "decode_size", lambda data: decoded.append(data))
    result = stream(["--image", str(path)], key_file, monkeypatch)
    assert result.code == ExitStatus.USAGE, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert errors == [
        f"error: --image '{path}' is {width}×{height} ({width * height / 1e6:.0f} megapixels), over the 50-megapixel / 16384-pixel limit"
    ]
    assert decoded == []


def test_truncated_image_is_refused(tmp_path: Path, key_file: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """An image with a valid header but broken data is refused before connecting."""
    broken = tmp_path / "broken.png"
    broken.write_bytes(png_bytes(64, 64)[:45])
    result = stream(["--image", str(broken)], key_file, monkeypatch)
    assert result.code == ExitStatus.USAGE
    assert "cannot be decoded (truncated or corrupt image)" in result.stderr


def test_image_with_a_model_that_takes_none(tmp_path: Path, key_file: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """--image with a model without reference images is refused before connecting."""
    face = tmp_path / "face.png"
    face.write_bytes(png_bytes())
    result = stream(["--model", "lucy-restyle-2", "--image", str(face)], key_file, monkeypatch)
    assert result.code == ExitStatus.USAGE
    assert "--image: model 'lucy-restyle-2' takes no reference image" in result.stderr


def test_bad_prompts_file_names_the_line(tmp_path: Path, key_file: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A malformed --prompts file is refused with its line number."""
    path = tmp_path / "p.txt"
    path.write_text("0 anime\nlater cyberpunk\n")
    result = stream(["--prompts", str(path)], key_file, monkeypatch)
    assert result.code == ExitStatus.USAGE
    assert f"{path}:2: expected 'SECONDS TEXT'" in result.stderr


def test_no_key_without_local_says_how(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a key and without --local: one line saying how to set DECART_API_KEY or use --local."""
    result = run_cli(["stream", "--camera", "test", "--no-window"], monkeypatch)
    assert result.code == ExitStatus.USAGE
    assert result.stderr.startswith("error: no API key")
    assert "DECART_API_KEY" in result.stderr and "--local" in result.stderr


def test_list_cameras_json(monkeypatch: pytest.MonkeyPatch) -> None:
    """--list-cameras --json prints a JSON array (empty on a machine without cameras) and exits 0."""
    result = run_cli(["stream", "--list-cameras", "--json"], monkeypatch)
    assert result.code == 0
    cameras = json.loads(result.stdout)
    assert isinstance(cameras, list)
    for cam in cameras:
        assert {"index", "path", "name", "facing"} <= set(cam)


def test_image_sniffing() -> None:
    """PNG/JPEG/WebP headers are recognised; other bytes are not."""
    assert image_kind(png_bytes()) == "png"
    jpeg = (
        b"\xff\xd8\xff\xe0"
        + struct.pack(">H", 16)
        + b"JFIF\x00"
        + b"\x00" * 9
        + b"\xff\xc0\x00\x11\x08\x00\x04\x00\x04"
    )
    assert image_kind(jpeg) == "jpeg"
    vp8 = b"RIFF\x00\x00\x00\x00WEBPVP8 \x00\x00\x00\x00" + b"\x00\x00\x00\x9d\x01\x2a" + struct.pack("<HH", 64, 48)
    assert image_kind(vp8) == "webp"
    assert image_kind(b"") is None
    assert image_kind(b"\x89PNG\r\n\x1a\n") is None
    assert image_kind(b"\xff\xd8\xff\xe0\x00\x10") is None


def test_load_image_rejects_directories(tmp_path: Path) -> None:
    """A directory is not an image."""
    from decart_cli.errors import UsageError

    with pytest.raises(UsageError, match="is a directory"):
        load_image(str(tmp_path))


def test_deprecated_model_notice_then_refused_connection(key_file: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A deprecated model name gives a notice on stderr; a refused connection is one error line, exit 1."""
    result = stream(["--model", "mirage_v2", "--duration", "1"], key_file, monkeypatch)
    assert "warning: model 'mirage_v2' is deprecated; using 'lucy-restyle-2' instead" in result.stderr
    assert result.code == ExitStatus.ERROR, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1
    assert "test-key-123456" not in result.stderr


def test_public_names_are_pinned() -> None:
    """The stream modules export exactly these names."""
    import decart_cli.core.prompt_queue as pq
    import decart_cli.core.prompts_file as pf
    import decart_cli.runtime as rt
    import decart_cli.runtime.host as rh
    import decart_cli.runtime.input as ri
    import decart_cli.runtime.view as rv
    import decart_cli.ui.events_out as eo
    import decart_cli.ui.keys as ks
    import decart_cli.ui.line_editor as le
    import decart_cli.ui.live as lv

    expected = {
        pq: {"DEFAULT_DEBOUNCE", "PromptQueue", "PromptState"},
        pf: {"TimedPrompt", "parse_prompts"},
        rt: {"StreamOptions", "StreamOutcome", "StreamRunner"},
        ri: {
            "COMMANDS",
            "MAX_IMAGE_BYTES",
            "MAX_IMAGE_PIXELS",
            "CommandHandler",
            "UpdatePump",
            "decode_size",
            "image_kind",
            "load_image",
            "parse_command",
            "update_message",
        },
        rv: {"View", "fmt_size"},
        rh: {"RunnerHost"},
        eo: {
            "COMMON_FIELDS",
            "RECORD_FIELDS",
            "SCHEMA_VERSION",
            "EventSink",
            "JsonEvents",
            "NullSink",
            "PlainLog",
            "describe",
            "plain_line",
        },
        ks: {"Key", "KeyDecoder", "KeyName", "KeyReader", "restore_all"},
        le: {"Completion", "EditResult", "LineEditor", "complete", "list_dir"},
        lv: {"HELP_LINES", "STATE_ROWS", "LivePanel", "PanelSnapshot", "render"},
    }
    for module, names in expected.items():
        assert set(module.__all__) == names, module.__name__
        assert all(hasattr(module, name) for name in names), module.__name__
