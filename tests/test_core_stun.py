"""core.stun: RFC 5389 Binding encode/parse, checked against the RFC 5769 test vectors."""

from __future__ import annotations

import struct

import pytest

from decart_cli.core import stun

# RFC 5769 §2.2 and §2.3: sample Binding success responses (SOFTWARE, XOR-MAPPED-ADDRESS,
# MESSAGE-INTEGRITY and FINGERPRINT attributes), transaction id b7e7a701bc34d686fa87dfae.
TID = bytes.fromhex("b7e7a701bc34d686fa87dfae")
RFC5769_IPV4 = bytes.fromhex(
    "0101003c2112a442b7e7a701bc34d686fa87dfae"
    "8022000b7465737420766563746f7220"
    "00200008"
    "0001a147e112a643"
    "000800142b91f599fd9e90c38c7489f92af9ba53f06be7d7"
    "80280004c07d4c96"
)
RFC5769_IPV6 = bytes.fromhex(
    "010100482112a442b7e7a701bc34d686fa87dfae"
    "8022000b7465737420766563746f7220"
    "00200014"
    "0002a1470113a9faa5d3f179bc25f4b5bed2b9d9"
    "00080014a382954e4be67bf11784c97c8292c275bfe3ed41"
    "80280004c8fb0b4c"
)


def test_request_layout() -> None:
    """A Binding request is 20 bytes: type 0x0001, length 0, magic cookie, the transaction id."""
    tid = stun.new_transaction_id()
    raw = stun.encode_binding_request(tid)
    assert len(raw) == 20
    assert struct.unpack("!HHI", raw[:8]) == (0x0001, 0, 0x2112A442)
    assert raw[8:] == tid
    assert stun.parse_binding_request(raw) == tid


def test_transaction_ids_are_fresh() -> None:
    """Each new transaction id is 12 random bytes."""
    ids = {stun.new_transaction_id() for _ in range(50)}
    assert len(ids) == 50 and all(len(i) == 12 for i in ids)


def test_rfc5769_ipv4_vector() -> None:
    """The RFC 5769 IPv4 sample decodes to 192.0.2.1:32853, skipping the other attributes."""
    response = stun.parse_binding_response(RFC5769_IPV4, TID)
    assert response == stun.BindingResponse(success=True, mapped=("192.0.2.1", 32853))


def test_rfc5769_ipv6_vector() -> None:
    """The RFC 5769 IPv6 sample decodes to 2001:db8:1234:5678:11:2233:4455:6677 port 32853."""
    response = stun.parse_binding_response(RFC5769_IPV6, TID)
    assert response.mapped == ("2001:db8:1234:5678:11:2233:4455:6677", 32853)


@pytest.mark.parametrize("address", [("203.0.113.7", 54321), ("2001:db8::1", 3478)])
def test_success_round_trip(address: tuple[str, int]) -> None:
    """What the server side encodes, the client side parses back (IPv4 and IPv6)."""
    tid = stun.new_transaction_id()
    raw = stun.encode_binding_success(tid, address)
    assert stun.parse_binding_response(raw, tid).mapped == address


def test_mapped_address_fallback() -> None:
    """A pre-XOR server's MAPPED-ADDRESS is used when XOR-MAPPED-ADDRESS is missing."""
    value = struct.pack("!BBH", 0, 1, 4242) + bytes([198, 51, 100, 9])
    attr = struct.pack("!HH", 0x0001, len(value)) + value
    raw = struct.pack("!HHI", 0x0101, len(attr), 0x2112A442) + TID + attr
    assert stun.parse_binding_response(raw, TID).mapped == ("198.51.100.9", 4242)


def test_error_response() -> None:
    """An error response reports its ERROR-CODE number and reason and no mapped address."""
    reason = b"Bad Request"
    value = bytes([0, 0, 4, 0]) + reason
    attr = struct.pack("!HH", 0x0009, len(value)) + value + b"\x00" * (-len(value) % 4)
    raw = struct.pack("!HHI", 0x0111, len(attr), 0x2112A442) + TID + attr
    response = stun.parse_binding_response(raw, TID)
    assert (response.success, response.mapped, response.error_code, response.error_reason) == (
        False,
        None,
        400,
        "Bad Request",
    )


def test_foreign_transaction_rejected() -> None:
    """An answer to another transaction is refused (stale or spoofed)."""
    with pytest.raises(stun.StunError, match="transaction id"):
        stun.parse_binding_response(RFC5769_IPV4, bytes(12))


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (b"\x01\x01\x00", "too short"),
        (bytes.fromhex("c101000021 12a442") + TID, "leading bits"),
        (bytes.fromhex("0101000000000000") + TID, "magic cookie"),
        (bytes.fromhex("010100082112a442") + TID, "length"),
        (bytes.fromhex("000100002112a442") + TID, "not a Binding response"),
        (bytes.fromhex("010100082112a442") + TID + bytes.fromhex("00200010") + b"\x00" * 4, "truncated"),
        (bytes.fromhex("010100082112a442") + TID + bytes.fromhex("0020000400030000"), "family"),
        (bytes.fromhex("010100082112a442") + TID + bytes.fromhex("0020000200010000"), "truncated"),
        (bytes.fromhex("010100082112a442") + TID + bytes.fromhex("0020000400010000"), "truncated"),
        (bytes.fromhex("010100082112a442") + TID + bytes.fromhex("0009000200000000"), "ERROR-CODE"),
    ],
)
def test_malformed_responses(raw: bytes, match: str) -> None:
    """Malformed bytes raise StunError naming what is wrong, never IndexError or struct.error."""
    with pytest.raises(stun.StunError, match=match):
        stun.parse_binding_response(raw, TID)


def test_request_parser_rejects_responses() -> None:
    """The server-side parser accepts only Binding requests."""
    with pytest.raises(stun.StunError, match="not a Binding request"):
        stun.parse_binding_request(RFC5769_IPV4)


def test_bad_transaction_id_length() -> None:
    """Transaction ids must be exactly 12 bytes."""
    with pytest.raises(stun.StunError, match="12 bytes"):
        stun.encode_binding_request(b"short")


def test_errors_are_protocol_errors() -> None:
    """StunError belongs to the project's error tree."""
    from decart_cli.errors import ProtocolError

    assert issubclass(stun.StunError, ProtocolError)


def test_exports_are_pinned() -> None:
    """The public names of core.stun are exactly these."""
    assert sorted(stun.__all__) == sorted(
        [
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
    )
