"""``decart netcheck``: can this network reach Decart, and if not, which rule to ask IT for.

Checks, all run concurrently, each with its own deadline, the whole bounded by ``--timeout``:

* proxy variables (media/UDP never passes an HTTP proxy);
* DNS, TCP 443 and TLS (verified against the public roots; "inspection likely" otherwise) for
  api.decart.ai, api3.decart.ai, platform.decart.ai, turn.decart.ai and lk.decart.ai
  (``--staging``: api.stage-decart.com for api/signaling, turn.stage-decart.com for turn);
* an anonymous WebSocket upgrade on the signaling path (``--auth``: also one with the credential);
* STUN Binding requests to turn:3478, to a public STUN server (stun.l.google.com:19302) and to
  the media host's UDP 7882;
* ICE gathering with aiortc → the SDK preflight's words: direct UDP works / relay needed / nothing works.

Exit status: 0 when streaming should work, 1 when something blocks it, 2 for usage errors.

Endpoints override (for tests and unusual networks): ``--endpoints`` or ``DECART_NETCHECK_ENDPOINTS``
takes a JSON object, or the path of a file holding one. Every key is optional::

    {"api":       {"host": "127.0.0.1", "port": 8443, "server_name": "localhost"},
     "signaling": {"host": "127.0.0.1", "port": 8443, "ws_url": "wss://127.0.0.1:8443/v1/stream"},
     "platform":  {"host": "...", "port": 443},
     "turn":      {"host": "...", "port": 443, "udp_port": 3478},
     "media":     {"host": "...", "port": 443, "udp_port": 7882},
     "stun":      {"host": "...", "udp_port": 19302},
     "hosts":     {"blocked.invalid": [], "fake.test": ["127.0.0.1"]},
     "ca_bundle": "/path/to/roots.pem",
     "expect_public": false}

``hosts`` answers names without DNS (``[]`` = does not resolve), ``ca_bundle`` replaces the public
roots (certifi) used for TLS verification (also ``--ca-bundle``), and ``expect_public`` (default
false when an override is given) turns the "sink-holed to a private address" DNS warning on.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import json
import os
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any, Final
from urllib.parse import parse_qs, urlsplit

import typer

from decart_cli.commands._options import ApiKeyFileOpt, ApiKeyOpt, JsonOpt, TokenOpt
from decart_cli.config import Secret, load_settings, timeout_factor
from decart_cli.core import netcause
from decart_cli.core import netverdict as nv
from decart_cli.errors import ConfigError, ConnectionFailed, UsageError
from decart_cli.transport import probes
from decart_cli.ui.console import streams

__all__ = ["DEFAULT_TARGETS", "Plan", "Target", "load_plan", "register", "run_checks"]

ENDPOINTS_ENV: Final = "DECART_NETCHECK_ENDPOINTS"
DEFAULT_TIMEOUT: Final = 8.0
RENDER_MARGIN: Final = 0.3  # seconds kept back from --timeout to cancel stragglers and print
STEP_MARGIN: Final = 0.15  # steps end this much before the global cut, so they report their own timeout
STEP: Final = {"dns": 2.5, "tcp": 3.0, "tls": 3.0, "ws": 3.0, "auth": 1.5, "stun": 3.0, "ice": 5.0}
WS_PATH: Final = "/v1/stream?model=lucy-2.1"


@dataclass(frozen=True)
class Target:
    """One logical destination. ``port`` is TCP/TLS (None: UDP only), ``udp_port`` the STUN/media port."""

    name: str
    host: str
    port: int | None = 443
    udp_port: int | None = None
    server_name: str = ""
    ws_url: str | None = None

    @property
    def sni(self) -> str:
        """The TLS server name (defaults to ``host``)."""
        return self.server_name or self.host


def _defaults(api: str, signaling: str, turn: str) -> dict[str, Target]:
    return {
        "api": Target("api", api),
        "signaling": Target("signaling", signaling, ws_url=f"wss://{signaling}{WS_PATH}"),
        "platform": Target("platform", "platform.decart.ai"),
        "turn": Target("turn", turn, udp_port=3478),
        "media": Target("media", "lk.decart.ai", udp_port=7882),
        "stun": Target("stun", "stun.l.google.com", port=None, udp_port=19302),
    }


DEFAULT_TARGETS: Final = _defaults("api.decart.ai", "api3.decart.ai", "turn.decart.ai")
STAGING_TARGETS: Final = _defaults("api.stage-decart.com", "api.stage-decart.com", "turn.stage-decart.com")


@dataclass(frozen=True)
class Plan:
    """Everything a run needs: targets, how to resolve names, which roots to trust, the budget."""

    targets: Mapping[str, Target]
    resolver: probes.Resolver = probes.system_resolve
    ssl_context: ssl.SSLContext = field(default_factory=ssl.create_default_context)
    # The OS store: a certificate the public roots reject but this trusts was signed by a locally
    # installed root, i.e. a TLS-inspecting proxy.
    local_context: ssl.SSLContext | None = field(default_factory=ssl.create_default_context)
    expect_public: bool = True
    timeout: float = DEFAULT_TIMEOUT
    credential: Secret | None = None
    env: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))


def _public_context(ca_bundle: str | None) -> ssl.SSLContext:
    if ca_bundle:
        try:
            return ssl.create_default_context(cafile=ca_bundle)
        except (OSError, ssl.SSLError) as exc:
            raise UsageError(f"cannot load CA bundle {ca_bundle!r}: {exc}", hint="pass a PEM file") from exc
    try:
        import certifi  # the public roots, independent of locally installed (corporate) roots

        return ssl.create_default_context(cafile=certifi.where())
    except ImportError:  # pragma: no cover - certifi ships with httpx
        return ssl.create_default_context()


def _read_override(raw: str) -> dict[str, Any]:
    text = raw if raw.lstrip().startswith(("{", "[")) else None
    if text is None:
        try:
            text = Path(raw).read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot read endpoints file {raw!r}: {exc.strerror}") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"endpoints override is not valid JSON: {exc}", hint="see 'decart netcheck --help'") from exc
    if not isinstance(data, dict):
        raise UsageError("endpoints override must be a JSON object", hint="see 'decart netcheck --help'")
    return data


def _apply(base: Target, spec: Any) -> Target:
    if not isinstance(spec, dict):
        raise UsageError(f"endpoints override for {base.name!r} must be an object, got {spec!r}")
    allowed = {"host", "port", "udp_port", "server_name", "ws_url"}
    unknown = set(spec) - allowed
    if unknown:
        raise UsageError(f"unknown key(s) {sorted(unknown)} for {base.name!r}", hint=f"allowed: {sorted(allowed)}")
    for key in ("port", "udp_port"):
        if key in spec and spec[key] is not None and not (isinstance(spec[key], int) and 0 < spec[key] < 65536):
            raise UsageError(f"{base.name}.{key} must be a port number, got {spec[key]!r}")
    target = replace(base, **spec)
    if "host" in spec and "ws_url" not in spec and base.ws_url is not None:
        port = "" if target.port in (None, 443) else f":{target.port}"
        target = replace(target, ws_url=f"wss://{target.host}{port}{WS_PATH}")
    return target


def load_plan(
    *,
    staging: bool = False,
    endpoints: str | None = None,
    ca_bundle: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    credential: Secret | None = None,
    resolver: probes.Resolver | None = None,
) -> Plan:
    """Build a :class:`Plan` from the options and the override (module docstring).

    Raises:
        UsageError: malformed override, unreadable CA bundle, non-positive timeout.
    """
    if not timeout > 0:
        raise UsageError(f"--timeout must be positive, got {timeout}")
    targets = dict(STAGING_TARGETS if staging else DEFAULT_TARGETS)
    override = _read_override(endpoints) if endpoints else {}
    for name, spec in override.items():
        if name in targets:
            targets[name] = _apply(targets[name], spec)
        elif name not in {"hosts", "ca_bundle", "expect_public"}:
            raise UsageError(f"unknown endpoints key {name!r}", hint=f"known: {sorted(targets)}")
    hosts = override.get("hosts", {})
    if not isinstance(hosts, dict) or not all(isinstance(v, list) for v in hosts.values()):
        raise UsageError('endpoints "hosts" must map names to lists of addresses')
    base_resolver = resolver or probes.system_resolve
    return Plan(
        targets=targets,
        resolver=probes.static_resolver(hosts, base_resolver) if hosts else base_resolver,
        ssl_context=_public_context(ca_bundle or override.get("ca_bundle")),
        expect_public=bool(override.get("expect_public", not override)),
        timeout=timeout,
        credential=credential,
    )


class _Budget:
    """The global deadline; each step gets ``min(its own deadline, time left)``."""

    def __init__(self, total: float) -> None:
        self.total = total
        self.end = time.monotonic() + max(0.05, total - RENDER_MARGIN)

    def step(self, kind: str) -> float:
        return max(0.01, min(STEP[kind] * timeout_factor(), self.end - STEP_MARGIN - time.monotonic()))


class _Report:
    """Rows in a fixed order; a row still missing at the deadline becomes "timed out"."""

    def __init__(self) -> None:
        self.order: list[tuple[str, str, str]] = []  # (check, name, target)
        self.rows: dict[tuple[str, str], nv.CheckResult] = {}

    def expect(self, check: str, name: str, target: str) -> None:
        self.order.append((check, name, target))

    def put(self, row: nv.CheckResult) -> None:
        self.rows[(row.check, row.name)] = row

    def finish(self, total: float) -> list[nv.CheckResult]:
        return [self.rows.get((c, n)) or nv.timed_out(c, t, n, total) for c, n, t in self.order]


def _with_key(url: str, credential: Secret) -> str:
    from urllib.parse import quote

    sep = "&" if urlsplit(url).query else "?"
    return f"{url}{sep}api_key={quote(credential.reveal(), safe='')}"


async def run_checks(plan: Plan) -> list[nv.CheckResult]:
    """Run every check concurrently within ``plan.timeout`` seconds; rows in a stable order."""
    budget = _Budget(plan.timeout)
    report = _Report()
    dns_tasks: dict[str, asyncio.Task[nv.Observation]] = {}

    def resolve(host: str, port: int) -> Awaitable[nv.Observation]:
        if host not in dns_tasks:  # one lookup per name, shared by every check that needs it
            dns_tasks[host] = asyncio.ensure_future(probes.probe_dns(host, port, plan.resolver, budget.step("dns")))
        return asyncio.shield(dns_tasks[host])

    async def host_chain(t: Target) -> None:
        assert t.port is not None
        dns = await resolve(t.host, t.port)
        report.put(nv.judge_dns(t.name, t.host, dns, expect_public=plan.expect_public))
        addrs = list(dns.data.get("addresses", []))
        jobs = [tcp_tls(t, dns, addrs)]
        if t.ws_url:
            jobs.append(websocket(t, dns, addrs))
            if plan.credential is not None:
                jobs.append(websocket(t, dns, addrs, auth=True))
        await asyncio.gather(*jobs)

    async def tcp_tls(t: Target, dns: nv.Observation, addrs: list[str]) -> None:
        assert t.port is not None
        if not addrs:
            tcp = tls = nv.Observation("skipped", error=f"{t.host} did not resolve")
        else:
            tcp, tls = await probes.probe_tcp_tls(
                t.host,
                t.port,
                addrs,
                server_name=t.sni,
                ssl_context=plan.ssl_context,
                tcp_deadline=budget.step("tcp"),
                tls_deadline=budget.step("tls"),
                local_context=plan.local_context,
            )
        report.put(nv.judge_tcp(t.name, t.host, t.port, tcp))
        report.put(nv.judge_tls(t.name, t.sni, t.port, tls))

    async def websocket(t: Target, dns: nv.Observation, addrs: list[str], auth: bool = False) -> None:
        assert t.ws_url is not None
        if not addrs:
            obs = nv.Observation("skipped", error=f"{t.host} did not resolve", data={"url": t.ws_url})
        elif auth and plan.credential is not None:
            obs = await probes.probe_ws(
                _with_key(t.ws_url, plan.credential),
                addrs,
                ssl_context=plan.ssl_context,
                deadline=budget.step("ws"),
                auth_wait=budget.step("auth"),
            )
        else:
            obs = await probes.probe_ws(t.ws_url, addrs, ssl_context=plan.ssl_context, deadline=budget.step("ws"))
        if auth and plan.credential is not None:
            model = parse_qs(urlsplit(t.ws_url).query).get("model", [None])[0]
            report.put(nv.judge_ws_auth(t.name, t.host, obs, credential_kind=plan.credential.kind, model=model))
        else:
            report.put(nv.judge_ws(t.name, t.host, obs))

    async def udp(t: Target) -> None:
        assert t.udp_port is not None
        dns = await resolve(t.host, t.udp_port)
        addrs = list(dns.data.get("addresses", []))
        if not addrs:
            why = {"nxdomain": "does not resolve", "timeout": "DNS timed out"}.get(dns.status, dns.error)
            obs = nv.Observation("skipped", error=f"{t.host} {why}", data={"dns_status": dns.status})
        else:
            obs = await probes.probe_stun(t.host, t.udp_port, addrs, budget.step("stun"))
        report.put(nv.judge_stun(t.name, t.host, t.udp_port, obs))

    async def ice(url: str) -> None:
        from decart_cli.transport.ice_probe import probe_ice

        # aioice resolves the STUN host itself; hand it an address so the plan's resolver decides.
        stun_t = plan.targets["stun"]
        dns = await resolve(stun_t.host, stun_t.udp_port or 3478)
        addrs = [a for a in dns.data.get("addresses", []) if ":" not in a]
        servers = [f"stun:{addrs[0]}:{stun_t.udp_port}"] if addrs else []
        obs = await probe_ice(servers, budget.step("ice"))
        if not servers:
            obs = replace(obs, data={**obs.data, "stun_unresolved": stun_t.host})
        report.put(nv.judge_ice(url, obs))

    report.put(nv.judge_proxy(plan.env))
    report.expect("proxy", "proxy", "environment")
    jobs: list[Callable[[], Awaitable[None]]] = []
    for t in plan.targets.values():
        if t.port is not None:
            report.expect("dns", t.name, t.host)
            report.expect("tcp", t.name, f"{t.host}:{t.port}")
            report.expect("tls", t.name, f"{t.sni}:{t.port}")
            jobs.append(functools.partial(host_chain, t))
            if t.ws_url:
                report.expect("websocket", t.name, t.ws_url)
                if plan.credential is not None:
                    report.expect("websocket-auth", t.name, t.ws_url)
    for t in plan.targets.values():
        if t.udp_port is not None:
            report.expect("udp" if t.name == "media" else "stun", t.name, f"{t.host}:{t.udp_port}/udp")
            jobs.append(functools.partial(udp, t))
    stun_t = plan.targets["stun"]
    ice_target = f"stun:{stun_t.host}:{stun_t.udp_port}"
    report.expect("ice", "ice", ice_target)
    jobs.append(functools.partial(ice, ice_target))

    # Import aiortc (~0.3 s) before the probes start: an import running beside them holds the GIL
    # and inflates every RTT they measure. It counts against the budget like everything else.
    with contextlib.suppress(ImportError, TimeoutError):
        await asyncio.wait_for(asyncio.to_thread(importlib.import_module, "aiortc"), budget.step("ice") / 2)
    tasks = [asyncio.ensure_future(job()) for job in jobs]
    _done, pending = await asyncio.wait(tasks, timeout=max(0.0, budget.end - time.monotonic()))
    for task in [*pending, *dns_tasks.values()]:
        task.cancel()
    if pending:  # give cancelled probes a moment to close their sockets, never more
        await asyncio.wait(pending, timeout=RENDER_MARGIN / 2)
    for task in _done:
        if (exc := task.exception()) is not None:
            raise exc
    return report.finish(plan.timeout)


EndpointsOpt = Annotated[
    str | None,
    typer.Option(
        "--endpoints",
        metavar="JSON|FILE",
        envvar=ENDPOINTS_ENV,
        help="Point the checks elsewhere: a JSON object or a file holding one, with keys api, signaling, "
        "platform, turn, media, stun ({host, port, udp_port, server_name, ws_url}), hosts ({name: [addresses]}, "
        "[] = does not resolve), ca_bundle, expect_public.",
        show_default=False,
    ),
]


def netcheck(
    as_json: JsonOpt = False,
    timeout: Annotated[
        float,
        typer.Option(
            "--timeout", metavar="SECONDS", help="Bound the whole run, in seconds (every check has its own deadline)."
        ),
    ] = DEFAULT_TIMEOUT,
    staging: Annotated[
        bool, typer.Option("--staging", help="Check the staging hosts (api/turn.stage-decart.com).")
    ] = False,
    auth: Annotated[
        bool, typer.Option("--auth", help="Also open the signaling WebSocket with your key to confirm it is accepted.")
    ] = False,
    ca_bundle: Annotated[
        str | None,
        typer.Option(
            "--ca-bundle",
            metavar="FILE",
            help="PEM roots that count as 'public' for TLS verification (default: certifi's).",
        ),
    ] = None,
    endpoints: EndpointsOpt = None,
    api_key: ApiKeyOpt = None,
    api_key_file: ApiKeyFileOpt = None,
    token: TokenOpt = None,
) -> None:
    """Check that this network can reach Decart; name the firewall rule to request when it cannot.

    Checks DNS, TCP 443, TLS (interception), the signaling WebSocket, UDP 3478/7882 (STUN) and ICE
    for api/api3/platform/turn/lk.decart.ai, all at once, within --timeout. Exit 0 when streaming
    should work, 1 when something blocks it, 2 for usage errors. Example: decart netcheck --json
    """
    credential: Secret | None = None
    if auth:
        settings = load_settings(api_key=api_key, api_key_file=api_key_file, token=token)
        credential = settings.credential
        if credential is None:
            raise ConfigError("--auth needs a credential", hint="set DECART_API_KEY, --api-key-file or --token")
    plan = load_plan(staging=staging, endpoints=endpoints, ca_bundle=ca_bundle, timeout=timeout, credential=credential)
    results = netcause.consolidate(asyncio.run(run_checks(plan)))
    cause = netcause.dns_root_cause(results)
    verdict = nv.verdict(results, root_cause=cause.summary if cause else None)
    if as_json:
        streams.json(
            {
                "checks": [r.to_json() for r in results],
                "verdict": verdict.to_json(),
                "streaming_should_work": verdict.streaming_should_work,
            }
        )
    else:
        from decart_cli.ui.netcheck_view import print_report

        print_report(streams, results, verdict)
    if not verdict.streaming_should_work:
        # A DecartError (exit 1) rather than typer.Exit(1): the root's boundary turns it into one line on
        # stderr and the exit status, whatever the click standalone mode; stdout already holds the report.
        where = "verdict.fixes in the JSON" if as_json else "the 'fix' column above"
        raise ConnectionFailed(verdict.summary, hint=f"ask IT for the rules in {where}")


def register(root: typer.Typer) -> None:
    """Attach ``netcheck`` to the root app."""
    root.command("netcheck")(netcheck)
