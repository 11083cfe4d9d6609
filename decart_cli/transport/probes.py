"""Network probes for ``decart netcheck``: DNS, TCP, TLS, WebSocket upgrade, UDP STUN.

Each probe is a coroutine with its own deadline that never raises for a network outcome: it returns
a :class:`~decart_cli.core.netverdict.Observation` (``resolved``, ``refused``, ``timeout``, …) that
``core.netverdict`` judges. The only exceptions that escape are cancellation and programming errors.

Name resolution goes through a :data:`Resolver`. The default runs ``getaddrinfo`` in a *daemon*
thread: a resolver that hangs (no network, dead DNS server) can neither hold the event loop past
its deadline nor keep the process alive at exit, which a ``ThreadPoolExecutor`` would (it joins its
workers at interpreter shutdown). IP literals never reach ``getaddrinfo``. Tests inject a resolver
(or a static host map) so that no test ever sends a DNS query off this machine.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import hashlib
import ipaddress
import json
import os
import socket
import ssl
import struct
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final
from urllib.parse import urlsplit

from decart_cli.config import redact
from decart_cli.core import stun
from decart_cli.core.netverdict import Observation

__all__ = [
    "Resolver",
    "probe_dns",
    "probe_stun",
    "probe_tcp_tls",
    "probe_ws",
    "static_resolver",
    "system_resolve",
]

Resolver = Callable[[str, int], Awaitable[list[str]]]
WS_GUID: Final = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 §1.3
MAX_HEADER_BYTES: Final = 16_384
STUN_RTO: Final = 0.5  # RFC 5389 §7.2.1: initial RTO 500 ms, doubled on each retransmission
UNREACHABLE: Final = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL, errno.ENETDOWN})
NXDOMAIN: Final = frozenset(
    code for code in (getattr(socket, "EAI_NONAME", None), getattr(socket, "EAI_NODATA", None)) if code is not None
)


def _elapsed(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


async def system_resolve(host: str, port: int) -> list[str]:
    """``getaddrinfo`` in a daemon thread (module docstring); IPv4 answers first.

    Raises:
        socket.gaierror: the name does not resolve.
    """
    if _is_ip(host):
        return [host]
    loop = asyncio.get_running_loop()
    future: asyncio.Future[list[str]] = loop.create_future()

    def settle(result: list[str] | None, exc: BaseException | None) -> None:
        if future.done():
            return
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(result or [])

    def work() -> None:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            addrs = [str(info[4][0]) for info in infos]
            ordered = sorted(dict.fromkeys(addrs), key=lambda a: ":" in a)
            outcome: tuple[list[str] | None, BaseException | None] = (ordered, None)
        except OSError as exc:
            outcome = (None, exc)
        try:
            loop.call_soon_threadsafe(settle, *outcome)
        except RuntimeError:  # the loop closed while we waited: nobody needs the answer
            pass

    threading.Thread(target=work, name=f"netcheck-dns-{host}", daemon=True).start()
    return await future


def static_resolver(hosts: Mapping[str, list[str]], fallback: Resolver = system_resolve) -> Resolver:
    """A resolver that answers names in ``hosts`` itself (``[]`` means "does not resolve").

    Names not in the map go to ``fallback``. Used by the endpoints override and by tests.
    """

    async def resolve(host: str, port: int) -> list[str]:
        if host in hosts:
            if not hosts[host]:
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known (endpoints override)")
            return list(hosts[host])
        return await fallback(host, port)

    return resolve


async def probe_dns(host: str, port: int, resolver: Resolver, deadline: float) -> Observation:
    """Resolve ``host`` within ``deadline`` seconds: ``resolved`` / ``nxdomain`` / ``timeout`` / ``error``."""
    start = time.perf_counter()
    try:
        async with asyncio.timeout(deadline):
            addresses = await resolver(host, port)
    except TimeoutError:
        return Observation("timeout", _elapsed(start), "no DNS answer")
    except socket.gaierror as exc:
        status = "nxdomain" if exc.errno in NXDOMAIN else "error"
        return Observation(status, _elapsed(start), exc.strerror or str(exc))
    except OSError as exc:
        return Observation("error", _elapsed(start), exc.strerror or str(exc))
    if not addresses:
        return Observation("nxdomain", _elapsed(start), "no addresses")
    return Observation("resolved", _elapsed(start), data={"addresses": addresses})


def _connect_error(exc: OSError, start: float, address: str) -> Observation:
    data = {"address": address}
    if isinstance(exc, ConnectionRefusedError):
        return Observation("refused", _elapsed(start), "connection refused", data)
    if exc.errno in UNREACHABLE:
        return Observation("unreachable", _elapsed(start), exc.strerror or str(exc), data)
    return Observation("error", _elapsed(start), exc.strerror or str(exc), data)


async def _open(address: str, port: int, deadline: float) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    async with asyncio.timeout(deadline):
        return await asyncio.open_connection(address, port)


def _close(writer: asyncio.StreamWriter) -> None:
    # abort(), not close(): a probe has nothing left to say and must not wait for a TLS close_notify.
    writer.transport.abort()


def _name(rdns: Any) -> str:
    parts = [f"{k}={v}" for rdn in rdns for (k, v) in rdn]
    mapping = {"commonName": "CN", "organizationName": "O", "countryName": "C", "organizationalUnitName": "OU"}
    return ", ".join(mapping.get(p.split("=", 1)[0], p.split("=", 1)[0]) + "=" + p.split("=", 1)[1] for p in parts)


async def _handshake_der(
    address: str, port: int, server_name: str, ctx: ssl.SSLContext, deadline: float
) -> bytes | None:
    """The peer's leaf certificate (DER) after a handshake with ``ctx``; None when it fails."""
    try:
        async with asyncio.timeout(deadline):
            _reader, writer = await asyncio.open_connection(address, port, ssl=ctx, server_hostname=server_name)
    except (OSError, TimeoutError, ssl.SSLError):
        return None
    try:
        obj = writer.get_extra_info("ssl_object")
        return obj.getpeercert(binary_form=True) if obj is not None else None
    finally:
        _close(writer)


async def _unverified_issuer(
    address: str, port: int, server_name: str, deadline: float, local_context: ssl.SSLContext | None
) -> dict[str, Any]:
    """Name the issuer of a certificate the public roots rejected, for the report.

    First a handshake trusting the local store (``local_context``, the OS roots): if that verifies,
    a locally installed root signed the certificate — the signature of a TLS-inspecting proxy
    (client-behaviour.md G.4). Otherwise an unverified handshake, only to read the names.
    """
    start = time.monotonic()
    local_root = False
    der = None
    if local_context is not None:
        der = await _handshake_der(address, port, server_name, local_context, deadline)
        local_root = der is not None
    if der is None:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # never used for data: the connection is aborted at once
        left = max(0.05, deadline - (time.monotonic() - start))
        der = await _handshake_der(address, port, server_name, ctx, left)
    if not der:
        return {}
    try:
        from cryptography import x509  # an aiortc dependency; only used to read the issuer's name
    except ImportError:  # pragma: no cover - cryptography ships with aiortc
        return {"local_root": local_root}
    cert = x509.load_der_x509_certificate(der)
    return {"issuer": cert.issuer.rfc4514_string(), "subject": cert.subject.rfc4514_string(), "local_root": local_root}


async def probe_tcp_tls(
    host: str,
    port: int,
    addresses: list[str],
    *,
    server_name: str,
    ssl_context: ssl.SSLContext,
    tcp_deadline: float,
    tls_deadline: float,
    local_context: ssl.SSLContext | None = None,
) -> tuple[Observation, Observation]:
    """Connect to the first address, then upgrade the same connection to TLS.

    Returns:
        ``(tcp, tls)`` observations. TLS is ``verified`` (data version, cipher, alpn, issuer,
        subject), ``unverified`` (data verify_error, issuer, local_root: whether ``local_context``,
        the OS store, trusts it; found by a second handshake),
        ``reset``, ``timeout``, ``error`` or ``skipped`` when TCP failed.
    """
    address = addresses[0]
    start = time.perf_counter()
    try:
        _reader, writer = await _open(address, port, tcp_deadline)
    except TimeoutError:
        tcp = Observation("timeout", _elapsed(start), "no answer", {"address": address})
        return tcp, Observation("skipped", error="TCP did not connect")
    except OSError as exc:
        tcp = _connect_error(exc, start, address)
        return tcp, Observation("skipped", error="TCP did not connect")
    tcp = Observation("connected", _elapsed(start), data={"address": address})
    start = time.perf_counter()
    try:
        async with asyncio.timeout(tls_deadline):
            await writer.start_tls(ssl_context, server_hostname=server_name)
    except TimeoutError:
        _close(writer)
        return tcp, Observation("timeout", _elapsed(start), "no TLS handshake")
    except ssl.SSLCertVerificationError as exc:
        _close(writer)
        elapsed = _elapsed(start)
        left = max(0.05, tls_deadline - elapsed / 1000.0)
        names = await _unverified_issuer(address, port, server_name, left, local_context)
        found = {"verify_error": exc.verify_message or str(exc), **names}
        return tcp, Observation("unverified", elapsed, exc.verify_message or str(exc), found)
    except (ConnectionResetError, asyncio.IncompleteReadError, ssl.SSLError) as exc:
        _close(writer)
        return tcp, Observation("reset", _elapsed(start), str(exc) or type(exc).__name__)
    except OSError as exc:
        _close(writer)
        return tcp, Observation("error", _elapsed(start), exc.strerror or str(exc))
    elapsed = _elapsed(start)
    obj = writer.get_extra_info("ssl_object")
    cert = obj.getpeercert() if obj is not None else None
    data: dict[str, Any] = {"server_name": server_name}
    if obj is not None:
        data |= {"version": obj.version(), "cipher": (obj.cipher() or ("?",))[0], "alpn": obj.selected_alpn_protocol()}
    if cert:
        data |= {"issuer": _name(cert.get("issuer", ())), "subject": _name(cert.get("subject", ()))}
        data["not_after"] = cert.get("notAfter")
    _close(writer)
    return tcp, Observation("verified", elapsed, data=data)


def _ws_request(path: str, host_header: str, key: str) -> bytes:
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host_header}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {key}",
        "Sec-WebSocket-Version: 13",
        "User-Agent: decart-cli netcheck",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii")


def _parse_head(raw: bytes) -> tuple[int, dict[str, str]]:
    head = raw.decode("latin-1").split("\r\n")
    parts = head[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ValueError(f"not an HTTP answer: {head[0][:60]!r}")
    headers: dict[str, str] = {}
    for line in head[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return int(parts[1]), headers


async def _read_frame(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """One unmasked server frame (RFC 6455 §5.2); fragmented messages are not reassembled."""
    first, second = await reader.readexactly(2)
    length = second & 0x7F
    if length == 126:
        length = struct.unpack("!H", await reader.readexactly(2))[0]
    elif length == 127:
        length = struct.unpack("!Q", await reader.readexactly(8))[0]
    payload = await reader.readexactly(min(length, 65_536))
    return first & 0x0F, payload


def _rejection(opcode: int, payload: bytes) -> str | None:
    if opcode == 0x8:  # close: code + reason
        code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
        return f"closed with {code} {payload[2:].decode('utf-8', 'replace')}".strip()
    if opcode == 0x1:
        try:
            message = json.loads(payload)
        except ValueError:
            return None
        if isinstance(message, dict) and message.get("type") == "error":
            return str(message.get("error") or message.get("message") or "error")
    return None


async def probe_ws(
    url: str,
    addresses: list[str],
    *,
    ssl_context: ssl.SSLContext,
    deadline: float,
    auth_wait: float = 0.0,
) -> Observation:
    """Send a WebSocket upgrade (RFC 6455 §4.1) to ``url`` and classify the answer.

    Without ``auth_wait`` the probe stops at the response head: ``upgraded`` (101, accept key
    checked) or ``http`` (data status + headers). With ``auth_wait`` > 0 (a URL carrying
    credentials) it then listens that long for an error message or close frame: ``rejected``
    (data message) or ``accepted``. Failures: ``reset``, ``timeout``, ``error``. The URL in
    ``data`` is redacted.
    """
    parts = urlsplit(url)
    secure = parts.scheme in ("wss", "https")
    host = parts.hostname or ""
    port = parts.port or (443 if secure else 80)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    data: dict[str, Any] = {"url": redact(url)}
    key = base64.b64encode(os.urandom(16)).decode("ascii")
    start = time.perf_counter()
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(deadline):
            reader, writer = await asyncio.open_connection(
                addresses[0], port, ssl=ssl_context if secure else None, server_hostname=host if secure else None
            )
            host_header = host if parts.port is None else f"{host}:{port}"
            writer.write(_ws_request(path, host_header, key))
            raw = await reader.readuntil(b"\r\n\r\n")
            status, headers = _parse_head(raw[:MAX_HEADER_BYTES])
            data |= {"status": status, "headers": {k: headers[k] for k in sorted(headers)[:20]}}
            if status != 101:
                return Observation("http", _elapsed(start), data=data)
            expected = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
            if headers.get("sec-websocket-accept") != expected:
                return Observation("error", _elapsed(start), "101 without a valid Sec-WebSocket-Accept", data)
        elapsed = _elapsed(start)
        if auth_wait <= 0:
            return Observation("upgraded", elapsed, data=data)
        try:
            async with asyncio.timeout(auth_wait):
                while True:
                    opcode, payload = await _read_frame(reader)
                    if (why := _rejection(opcode, payload)) is not None:
                        return Observation("rejected", _elapsed(start), why, data | {"message": why})
        except TimeoutError:
            # Silence for auth_wait means the credential was not refused at connect time.
            writer.write(b"\x88\x82" + os.urandom(4) + b"\x03\xe8")  # masked close 1000 (RFC 6455 §5.3)
            return Observation("accepted", elapsed, data=data | {"waited_ms": round(auth_wait * 1000.0)})
        except (asyncio.IncompleteReadError, ConnectionError):
            return Observation(
                "rejected", _elapsed(start), "connection closed", data | {"message": "connection closed"}
            )
    except TimeoutError:
        return Observation("timeout", _elapsed(start), "no answer", data)
    except ssl.SSLCertVerificationError as exc:
        return Observation("error", _elapsed(start), f"TLS not trusted: {exc.verify_message}", data)
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionResetError, ssl.SSLError) as exc:
        return Observation("reset", _elapsed(start), str(exc) or type(exc).__name__, data)
    except ValueError as exc:  # a non-HTTP answer: something other than a web server is in the way
        return Observation("error", _elapsed(start), str(exc), data)
    except OSError as exc:
        return _connect_error(exc, start, addresses[0])
    finally:
        if writer is not None:
            _close(writer)


class _StunClient(asyncio.DatagramProtocol):
    def __init__(self, tid: bytes) -> None:
        self.tid = tid
        self.answer: asyncio.Future[tuple[stun.BindingResponse, float]] = asyncio.get_running_loop().create_future()
        self.sent_at = time.perf_counter()

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        try:
            response = stun.parse_binding_response(data, self.tid)
        except stun.StunError:
            return  # someone else's packet or a stale answer: keep waiting (RFC 5389 §7.3)
        if not self.answer.done():
            self.answer.set_result((response, _elapsed(self.sent_at)))

    def error_received(self, exc: Exception) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc)


async def probe_stun(host: str, port: int, addresses: list[str], deadline: float) -> Observation:
    """A STUN Binding request to ``addresses[0]:port``, retransmitted at 0.5/1/2 s until ``deadline``.

    ``answered`` (data mapped ``ip:port``, rtt_ms from the last transmission, attempts),
    ``refused`` (ICMP port unreachable on the connected socket), ``no_answer``, ``unreachable``
    (no route) or ``error``.
    """
    loop = asyncio.get_running_loop()
    address = addresses[0]
    tid = stun.new_transaction_id()
    request = stun.encode_binding_request(tid)
    start = time.perf_counter()
    data: dict[str, Any] = {"address": address}
    try:
        transport, protocol = await loop.create_datagram_endpoint(lambda: _StunClient(tid), remote_addr=(address, port))
    except OSError as exc:
        return _connect_error(exc, start, address)
    attempts = 0
    try:
        rto = STUN_RTO
        async with asyncio.timeout(deadline):
            while True:
                protocol.sent_at = time.perf_counter()
                transport.sendto(request)
                attempts += 1
                try:
                    response, rtt = await asyncio.wait_for(asyncio.shield(protocol.answer), rto)
                except TimeoutError:
                    rto *= 2
                    continue
                mapped = f"{response.mapped[0]}:{response.mapped[1]}" if response.mapped else None
                data |= {"mapped": mapped, "rtt_ms": round(rtt, 1), "attempts": attempts}
                if not response.success:
                    data["error_code"] = response.error_code
                return Observation("answered", _elapsed(start), data=data)
    except TimeoutError:
        return Observation("no_answer", _elapsed(start), "no answer", data | {"attempts": attempts})
    except OSError as exc:
        return _connect_error(exc, start, address)
    finally:
        transport.close()
