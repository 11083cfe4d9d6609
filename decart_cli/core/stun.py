"""STUN Binding messages (RFC 5389), encoded and parsed without I/O.

Just enough of STUN for a reachability probe: the client side builds a Binding request and parses
the answer (XOR-MAPPED-ADDRESS, falling back to the RFC 3489 MAPPED-ADDRESS, and ERROR-CODE); the
server side (used by the loopback test responder) parses a request and builds a success answer.
No sockets, no clocks: the caller supplies the transaction id and the bytes.

Wire layout (RFC 5389 §6)::

    0                   1                   2                   3
    |0 0|  message type (14 bits)   |        message length          |
    |                     magic cookie 0x2112A442                     |
    |                  transaction id (96 bits)                       |
    |  attributes: type (16) | length (16) | value, padded to 4 bytes |
"""

from __future__ import annotations

import ipaddress
import secrets
import struct
from dataclasses import dataclass
from typing import Final

from decart_cli.errors import ProtocolError

__all__ = [
    "BINDING_ERROR",
    "BINDING_REQUEST",
    "BINDING_SUCCESS",
    "MAGIC_COOKIE",
    "BindingResponse",
    "StunError",
    "encode_binding_request",
    "encode_binding_success",
    "new_transaction_id",
    "parse_binding_request",
    "parse_binding_response",
]

MAGIC_COOKIE: Final = 0x2112A442
BINDING_REQUEST: Final = 0x0001
BINDING_SUCCESS: Final = 0x0101
BINDING_ERROR: Final = 0x0111
HEADER: Final = struct.Struct("!HHI12s")
HEADER_SIZE: Final = HEADER.size  # 20

ATTR_MAPPED_ADDRESS: Final = 0x0001
ATTR_ERROR_CODE: Final = 0x0009
ATTR_XOR_MAPPED_ADDRESS: Final = 0x0020
FAMILY_IPV4: Final = 0x01
FAMILY_IPV6: Final = 0x02


class StunError(ProtocolError):
    """Bytes that are not the STUN message we expected (wrong type, bad length, other transaction)."""


@dataclass(frozen=True)
class BindingResponse:
    """A parsed Binding answer.

    Attributes:
        success: True for a success response (0x0101), False for an error response (0x0111).
        mapped: the server-reflexive ``(ip, port)`` seen by the server, or None when absent.
        error_code: the ERROR-CODE number of an error response (e.g. 400), else None.
        error_reason: the ERROR-CODE reason phrase, else "".
    """

    success: bool
    mapped: tuple[str, int] | None
    error_code: int | None = None
    error_reason: str = ""


def new_transaction_id() -> bytes:
    """96 random bits (RFC 5389 §6: uniformly random, fresh for every request)."""
    return secrets.token_bytes(12)


def encode_binding_request(transaction_id: bytes) -> bytes:
    """A Binding request with no attributes (20 bytes).

    Raises:
        StunError: the transaction id is not 12 bytes.
    """
    _check_tid(transaction_id)
    return HEADER.pack(BINDING_REQUEST, 0, MAGIC_COOKIE, transaction_id)


def parse_binding_request(data: bytes) -> bytes:
    """Return the transaction id of a Binding request (server side).

    Raises:
        StunError: not an RFC 5389 Binding request.
    """
    msg_type, _length, tid = _parse_header(data)
    if msg_type != BINDING_REQUEST:
        raise StunError(f"STUN message type 0x{msg_type:04x} is not a Binding request")
    return tid


def encode_binding_success(transaction_id: bytes, mapped: tuple[str, int]) -> bytes:
    """A Binding success answer carrying XOR-MAPPED-ADDRESS for ``mapped`` (server side)."""
    _check_tid(transaction_id)
    ip = ipaddress.ip_address(mapped[0])
    port = mapped[1] ^ (MAGIC_COOKIE >> 16)
    key = struct.pack("!I", MAGIC_COOKIE) + transaction_id
    raw = ip.packed
    xored = bytes(b ^ key[i] for i, b in enumerate(raw))
    family = FAMILY_IPV4 if ip.version == 4 else FAMILY_IPV6
    value = struct.pack("!BBH", 0, family, port) + xored
    attribute = struct.pack("!HH", ATTR_XOR_MAPPED_ADDRESS, len(value)) + value
    return HEADER.pack(BINDING_SUCCESS, len(attribute), MAGIC_COOKIE, transaction_id) + attribute


def parse_binding_response(data: bytes, transaction_id: bytes) -> BindingResponse:
    """Parse the answer to the request sent with ``transaction_id``.

    XOR-MAPPED-ADDRESS wins over MAPPED-ADDRESS when both are present (RFC 5389 §15.2 exists because
    some NATs rewrite plain addresses found in payloads).

    Raises:
        StunError: not a Binding response, a different transaction id (a stale or spoofed answer),
            or a truncated attribute.
    """
    msg_type, length, tid = _parse_header(data)
    if msg_type not in (BINDING_SUCCESS, BINDING_ERROR):
        raise StunError(f"STUN message type 0x{msg_type:04x} is not a Binding response")
    if tid != transaction_id:
        raise StunError("STUN transaction id does not match the request (stale or foreign answer)")
    xor_mapped: tuple[str, int] | None = None
    mapped: tuple[str, int] | None = None
    error_code: int | None = None
    error_reason = ""
    for attr_type, value in _attributes(data[HEADER_SIZE : HEADER_SIZE + length]):
        if attr_type == ATTR_XOR_MAPPED_ADDRESS:
            xor_mapped = _parse_address(value, transaction_id, xor=True)
        elif attr_type == ATTR_MAPPED_ADDRESS:
            mapped = _parse_address(value, transaction_id, xor=False)
        elif attr_type == ATTR_ERROR_CODE:
            if len(value) < 4:
                raise StunError("STUN ERROR-CODE attribute is truncated")
            error_code = (value[2] & 0x07) * 100 + value[3]
            error_reason = value[4:].decode("utf-8", errors="replace")
    return BindingResponse(
        success=msg_type == BINDING_SUCCESS,
        mapped=xor_mapped or mapped,
        error_code=error_code,
        error_reason=error_reason,
    )


def _check_tid(transaction_id: bytes) -> None:
    if len(transaction_id) != 12:
        raise StunError(f"STUN transaction id must be 12 bytes, got {len(transaction_id)}")


def _parse_header(data: bytes) -> tuple[int, int, bytes]:
    if len(data) < HEADER_SIZE:
        raise StunError(f"STUN message too short ({len(data)} bytes)")
    msg_type, length, cookie, tid = HEADER.unpack_from(data)
    if msg_type & 0xC000:
        raise StunError("not a STUN message (the two leading bits are not zero)")
    if cookie != MAGIC_COOKIE:
        raise StunError(f"STUN magic cookie 0x{cookie:08x} is not 0x{MAGIC_COOKIE:08x} (RFC 3489 server?)")
    if length % 4 or HEADER_SIZE + length > len(data):
        raise StunError(f"STUN message length {length} does not match {len(data) - HEADER_SIZE} body bytes")
    return int(msg_type), int(length), bytes(tid)


def _attributes(body: bytes) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    offset = 0
    while offset + 4 <= len(body):
        attr_type, attr_len = struct.unpack_from("!HH", body, offset)
        start = offset + 4
        if start + attr_len > len(body):
            raise StunError(f"STUN attribute 0x{attr_type:04x} is truncated")
        out.append((attr_type, body[start : start + attr_len]))
        offset = start + attr_len + (-attr_len % 4)  # values are padded to 32 bits
    return out


def _parse_address(value: bytes, transaction_id: bytes, *, xor: bool) -> tuple[str, int]:
    if len(value) < 4:
        raise StunError("STUN address attribute is truncated")
    family = value[1]
    size = {FAMILY_IPV4: 4, FAMILY_IPV6: 16}.get(family)
    if size is None:
        raise StunError(f"STUN address family 0x{family:02x} is unknown")
    raw = value[4 : 4 + size]
    if len(raw) != size:
        raise StunError("STUN address attribute is truncated")
    port = struct.unpack_from("!H", value, 2)[0]
    if xor:
        port ^= MAGIC_COOKIE >> 16
        key = struct.pack("!I", MAGIC_COOKIE) + transaction_id
        raw = bytes(b ^ key[i] for i, b in enumerate(raw))
    return str(ipaddress.ip_address(raw)), int(port)
