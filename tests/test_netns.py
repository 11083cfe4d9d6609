"""scripts/netns-run and the tests/netns.py helper: a private namespace with lo + veth 127.0.0.2, nothing else."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

from netns import NETNS_RUN, run_in_netns, run_scenario


def test_namespace_has_lo_and_veth_with_127_0_0_2_and_no_ipv6() -> None:
    """Inside: lo up with 127.0.0.1, veth0 up with 127.0.0.2/32, veth1 up, and no IPv6 address at all."""
    result = run_in_netns(["ip", "-o", "addr", "show"], timeout=20).check()
    lines = result.stdout.splitlines()
    inet = sorted(line.split()[1] + " " + line.split()[3] for line in lines if " inet " in line)
    assert inet == ["lo 127.0.0.1/8", "veth0 127.0.0.2/32"]
    assert not [line for line in lines if " inet6 " in line]
    links = run_in_netns(["ip", "-o", "link", "show"], timeout=20).check().stdout
    names = {line.split(":")[1].strip().split("@")[0] for line in links.splitlines()}
    assert names == {"lo", "veth0", "veth1"}  # no interface of the host is visible
    assert all("UP" in line or "UNKNOWN" in line for line in links.splitlines())


def test_exit_status_and_output_of_the_command_are_passed_through() -> None:
    """The command's exit status and stdout come back unchanged; children share the namespace."""
    result = run_in_netns(["sh", "-c", "echo '{\"a\": 1}'; sh -c 'ip -o addr show veth0 | wc -l'; exit 7"], timeout=20)
    assert result.returncode == 7
    assert result.json() == {"a": 1}
    assert result.stdout.splitlines()[1].strip() == "1"  # the grandchild saw veth0


def test_scenario_runs_python_with_the_repository_importable(tmp_path: Path) -> None:
    """run_scenario runs a script with decart_cli and tests/ importable and returns its last JSON line."""
    script = tmp_path / "scenario.py"
    script.write_text(
        "import json, socket, decart_cli, netns\n"
        "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.connect(('127.0.0.2', 9))\n"
        "print('noise'); print(json.dumps({'local': s.getsockname()[0]}))\n"
    )
    assert run_scenario(script, timeout=30).check().json() == {"local": "127.0.0.2"}


def test_without_a_permitted_unshare_it_fails_with_one_line_and_exit_2(tmp_path: Path) -> None:
    """When unshare is refused, netns-run prints one line naming the cause and the fix, and exits 2."""
    fake = tmp_path / "unshare"
    fake.write_text("#!/bin/sh\necho 'unshare: unshare failed: Operation not permitted' >&2\nexit 1\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run([str(NETNS_RUN), "true"], capture_output=True, text=True, env=env, timeout=20)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "not permitted" in proc.stderr and "root" in proc.stderr


def test_without_a_command_it_prints_usage_and_exits_2() -> None:
    """netns-run with no command prints a usage line and exits 2."""
    proc = subprocess.run([str(NETNS_RUN)], capture_output=True, text=True, timeout=20)
    assert proc.returncode == 2 and "usage: netns-run" in proc.stderr


def test_the_script_is_posix_sh() -> None:
    """netns-run is a /bin/sh script that dash (a strict POSIX shell) parses."""
    assert NETNS_RUN.read_text().startswith("#!/bin/sh\n")
    dash = Path("/usr/bin/dash")
    shell = str(dash) if dash.exists() else "sh"
    assert subprocess.run([shell, "-n", str(NETNS_RUN)], capture_output=True, timeout=10).returncode == 0
    assert os.access(NETNS_RUN, os.X_OK)
