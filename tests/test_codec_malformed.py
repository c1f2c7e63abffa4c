"""Malformed PF_KEY messages and the errno FreeBSD gives for each.

Order and errno follow keysock.c ``key_output`` (short message, length field),
key.c ``key_parse`` (version, type, MCLBYTES, satype, src/dst checks),
``key_align`` (unknown and duplicate extension types, m_pulldown failure) and
``key_validate_ext`` (min/max size table, sockaddr length), as summarised in
../shared/reference/pfkey_setkey_reference.md §B.1 and checked against key.c
(FreeBSD main with IPSEC_OFFLOAD).  ``SEND`` means send(2) fails with the errno;
``REPLY`` means the request is echoed back with sadb_msg_errno set.
"""

from __future__ import annotations

import errno

import pytest

from pfkey import decode
from pfkey.errors import Delivery, PfkeyError

SEND, REPLY = Delivery.SEND, Delivery.REPLY


def hdr(mtype: int, satype: int, units: int, version: int = 2) -> bytes:
    """A hand-built sadb_msg header (pfkeyv2.h: u8 version,type,errno,satype; u16 len,reserved; u32 seq,pid)."""
    return bytes((version, mtype, 0, satype)) + units.to_bytes(2, "little") + bytes(10)


def ext(units: int, etype: int, payload: bytes = b"") -> bytes:
    """sadb_ext header (u16 len in 8-byte units, u16 type) + payload, as given (no padding added)."""
    return units.to_bytes(2, "little") + etype.to_bytes(2, "little") + payload


def msg(mtype: int, satype: int, *exts: bytes, version: int = 2, units: int | None = None) -> bytes:
    body = b"".join(exts)
    total = 16 + len(body)
    return hdr(mtype, satype, total // 8 if units is None else units, version) + body


def sin(addr: bytes = b"\xc0\xa8\x01\x01", port: int = 0, sa_len: int = 16, family: int = 2) -> bytes:
    """BSD sockaddr_in bytes: len, family, port (network order), address, zero fill to sa_len."""
    raw = bytes((sa_len, family)) + port.to_bytes(2, "big") + addr
    return raw.ljust(sa_len, b"\0")


def sin6(last: int = 1, sa_len: int = 28) -> bytes:
    raw = bytes((sa_len, 28)) + bytes(2) + bytes(4) + bytes(15) + bytes((last,)) + bytes(4)
    return raw.ljust(sa_len, b"\0")


def addr(etype: int, sa: bytes, proto: int = 255, plen: int = 32, units: int | None = None) -> bytes:
    """sadb_address: 4-byte sadb_ext header, proto, prefixlen, u16 reserved, then
    the sockaddr padded so the whole extension is a multiple of 8 bytes."""
    body = bytes((proto, plen)) + bytes(2) + sa
    body = body.ljust((4 + len(body) + 7) // 8 * 8 - 4, b"\0")
    return ext((4 + len(body)) // 8 if units is None else units, etype, body)


SA = ext(2, 1, bytes.fromhex("00010001") + bytes(8))        # sadb_sa spi 0x10001
SRC = addr(5, sin())
DST = addr(6, sin(b"\xc0\xa8\x01\x02"))
SRC6 = addr(5, sin6(1), plen=128)
DST6 = addr(6, sin6(2), plen=128)
LFT = ext(4, 3, bytes(28))
POL_OUT = ext(2, 18, bytes.fromhex("0000 02 00 00000000 00000000"))

ADD, GETSPI, EXPIRE, FLUSH, GET = 3, 1, 8, 9, 5
SPDADD, SPDDUMP, SPDDELETE2, PROMISC = 14, 18, 22, 11
ESP, AH = 3, 2

MALFORMED: list[tuple[str, bytes, int, Delivery]] = [
    # keysock.c key_output
    ("empty buffer", b"", errno.EINVAL, SEND),
    ("8 bytes", bytes(8), errno.EINVAL, SEND),
    ("15 bytes", hdr(FLUSH, 0, 2)[:15], errno.EINVAL, SEND),
    ("len says 3 units, buffer has 2", hdr(FLUSH, 0, 3), errno.EINVAL, SEND),
    ("len says 1 unit, buffer has 2", hdr(FLUSH, 0, 1), errno.EINVAL, SEND),
    ("len says 0", hdr(FLUSH, 0, 0), errno.EINVAL, SEND),
    ("buffer not a multiple of 8", hdr(FLUSH, 0, 2) + b"\0\0\0\0", errno.EINVAL, SEND),
    # key_parse header checks (reply)
    ("version 1", msg(FLUSH, 0, version=1), errno.EINVAL, REPLY),
    ("version 3", msg(FLUSH, 0, version=3), errno.EINVAL, REPLY),
    ("type 23 above SADB_MAX", msg(23, 0), errno.EINVAL, REPLY),
    ("type 255", msg(255, 0), errno.EINVAL, REPLY),
    ("bad version is checked before the size limit",
     hdr(FLUSH, 0, 257, version=7) + bytes(2040), errno.EINVAL, REPLY),
    # key_parse MCLBYTES (send error)
    ("2056 bytes > MCLBYTES", hdr(FLUSH, 0, 257) + bytes(2040), errno.ENOBUFS, SEND),
    ("64 KiB message", hdr(FLUSH, 0, 8192) + bytes(65536 - 16), errno.ENOBUFS, SEND),
    # key_align: extension types and duplicates
    ("extension type 0", msg(FLUSH, 0, ext(1, 0, bytes(4))), errno.EINVAL, SEND),
    ("extension type 17 KMPRIVATE", msg(FLUSH, 0, ext(1, 17, bytes(4))), errno.EINVAL, SEND),
    ("extension type 32", msg(FLUSH, 0, ext(1, 32, bytes(4))), errno.EINVAL, SEND),
    ("extension type 0xffff", msg(FLUSH, 0, ext(1, 0xFFFF, bytes(4))), errno.EINVAL, SEND),
    ("duplicate SA", msg(ADD, ESP, SA, SA, SRC, DST), errno.EINVAL, SEND),
    ("duplicate ADDRESS_SRC", msg(ADD, ESP, SA, SRC, SRC, DST), errno.EINVAL, SEND),
    ("duplicate IF_HW_OFFL (kernel view)",
     msg(ADD, ESP, ext(5, 31, bytes(36)), ext(5, 31, bytes(36))), errno.EINVAL, SEND),
    ("unknown type checked before satype",
     msg(ADD, 0, ext(1, 17, bytes(4))), errno.EINVAL, SEND),
    # key_validate_ext: min/max size table
    ("SA of 24 bytes (max 16)", msg(ADD, ESP, ext(3, 1, bytes(20))), errno.EINVAL, SEND),
    ("SA of 8 bytes (min 16)", msg(ADD, ESP, ext(1, 1, bytes(4))), errno.EINVAL, SEND),
    ("SA with len 0", msg(ADD, ESP, ext(0, 1, bytes(4))), errno.EINVAL, SEND),
    ("LIFETIME_HARD of 40 bytes", msg(ADD, ESP, ext(5, 3, bytes(36))), errno.EINVAL, SEND),
    ("SPIRANGE of 24 bytes", msg(GETSPI, ESP, ext(3, 16, bytes(20))), errno.EINVAL, SEND),
    ("SA2 of 8 bytes", msg(ADD, ESP, ext(1, 19, bytes(4))), errno.EINVAL, SEND),
    ("NAT_T_TYPE of 16 bytes", msg(ADD, ESP, ext(2, 20, bytes(12))), errno.EINVAL, SEND),
    ("SA_REPLAY of 16 bytes", msg(ADD, ESP, ext(2, 26, bytes(12))), errno.EINVAL, SEND),
    ("IF_HW_OFFL of 32 bytes (exactly 40 required)", msg(ADD, ESP, ext(4, 31, bytes(28))),
     errno.EINVAL, SEND),
    ("IF_HW_OFFL of 48 bytes", msg(ADD, ESP, ext(6, 31, bytes(44))), errno.EINVAL, SEND),
    ("LFT_CUR_SW_OFFL of 24 bytes", msg(ADD, ESP, ext(3, 29, bytes(20))), errno.EINVAL, SEND),
    ("POLICY of 8 bytes (min 16)", msg(SPDADD, 0, ext(1, 18, bytes(4))), errno.EINVAL, SEND),
    # key_validate_ext: sockaddr length rule
    ("address ext with no room for a sockaddr", msg(ADD, ESP, ext(1, 5, bytes(4))),
     errno.EINVAL, SEND),
    ("sockaddr_in sa_len 16 in a 32-byte address ext",
     msg(ADD, ESP, addr(5, sin(), units=4) + bytes(8)), errno.EINVAL, SEND),
    ("sockaddr_in6 sa_len 28 in a 24-byte address ext",
     msg(ADD, ESP, ext(3, 5, bytes((255, 128, 0, 0)) + sin6()[:16])), errno.EINVAL, SEND),
    ("sa_len 0 in a 16-byte address ext",
     msg(ADD, ESP, ext(2, 6, bytes((255, 32, 0, 0, 0, 2)) + bytes(6))), errno.EINVAL, SEND),
    ("IDENTITY of type X_ADDR with a wrong length",
     msg(ADD, ESP, ext(3, 10, bytes.fromhex("0400 0000") + bytes(8) + sin()[:8])),
     errno.EINVAL, SEND),
    # key_align: m_pulldown fails for an extension running past the end
    ("SA claims 16 bytes, 8 remain", msg(ADD, ESP, ext(2, 1, bytes(4))), errno.ENOBUFS, SEND),
    ("KEY claims 800 bytes, 16 remain", msg(ADD, ESP, ext(100, 8, bytes(12))),
     errno.ENOBUFS, SEND),
    ("address claims 24 bytes, 8 remain", msg(ADD, ESP, ext(3, 5, bytes(4))),
     errno.ENOBUFS, SEND),
    # key_parse satype rules (reply)
    ("UNSPEC satype for ADD", msg(ADD, 0, SA, SRC, DST), errno.EINVAL, REPLY),
    ("UNSPEC satype for GETSPI", msg(GETSPI, 0, SRC, DST), errno.EINVAL, REPLY),
    ("UNSPEC satype for GET", msg(GET, 0, SA, SRC, DST), errno.EINVAL, REPLY),
    ("UNSPEC satype for EXPIRE", msg(EXPIRE, 0), errno.EINVAL, REPLY),
    ("ESP satype for SPDADD", msg(SPDADD, ESP, POL_OUT, SRC, DST), errno.EINVAL, REPLY),
    ("AH satype for SPDDELETE2", msg(SPDDELETE2, AH, POL_OUT), errno.EINVAL, REPLY),
    ("RSVP satype", msg(ADD, 5, SA, SRC, DST), errno.EOPNOTSUPP, REPLY),
    ("MIP satype for FLUSH", msg(FLUSH, 8), errno.EOPNOTSUPP, REPLY),
    ("satype 1 outside X_PROMISC", msg(ADD, 1, SA, SRC, DST), errno.EINVAL, REPLY),
    ("obsolete satype 10", msg(FLUSH, 10), errno.EINVAL, REPLY),
    ("satype 12", msg(FLUSH, 12), errno.EINVAL, REPLY),
    ("SPDDUMP scope mask 3", msg(SPDDUMP, 3), errno.EINVAL, REPLY),
    ("SPDDUMP scope mask 5", msg(SPDDUMP, 5), errno.EINVAL, REPLY),
    ("satype is checked before the addresses",
     msg(ADD, 5, SA, SRC, DST6), errno.EOPNOTSUPP, REPLY),
    # key_parse src/dst checks (reply)
    ("upper-layer proto mismatch",
     msg(ADD, ESP, SA, addr(5, sin(), proto=6), addr(6, sin(), proto=17)), errno.EINVAL, REPLY),
    ("family mismatch", msg(ADD, ESP, SA, SRC, DST6), errno.EINVAL, REPLY),
    ("sa_len mismatch",
     msg(ADD, ESP, SA, SRC, addr(6, sin(sa_len=24))), errno.EINVAL, REPLY),
    ("AF_INET with sa_len 24 on both",
     msg(ADD, ESP, SA, addr(5, sin(sa_len=24)), addr(6, sin(sa_len=24))), errno.EINVAL, REPLY),
    ("AF_INET6 with sa_len 32 on both",
     msg(ADD, ESP, SA, addr(5, sin6(1, 32), plen=128), addr(6, sin6(2, 32), plen=128)),
     errno.EINVAL, REPLY),
    ("AF_LOCAL addresses",
     msg(ADD, ESP, SA, addr(5, sin(family=1)), addr(6, sin(family=1))),
     errno.EAFNOSUPPORT, REPLY),
    ("IPv4 prefix 33", msg(SPDADD, 0, POL_OUT, addr(5, sin(), plen=33), DST),
     errno.EINVAL, REPLY),
    ("IPv6 prefix 129", msg(SPDADD, 0, POL_OUT, SRC6, addr(6, sin6(2), plen=129)),
     errno.EINVAL, REPLY),
]


@pytest.mark.parametrize("name,data,err,delivery", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed(name: str, data: bytes, err: int, delivery: Delivery) -> None:
    """Each malformed message fails the way FreeBSD fails it (key_output /
    key_parse / key_align / key_validate_ext), with FreeBSD's errno."""
    with pytest.raises(PfkeyError) as info:
        decode(data)
    assert info.value.errno == err, info.value
    assert info.value.delivery is delivery, info.value
    assert isinstance(info.value, OSError)


def test_table_size() -> None:
    """The issue asks for at least 40 malformed cases."""
    assert len(MALFORMED) >= 40


def test_wire_errno_is_freebsd_numbering() -> None:
    """sadb_msg_errno carries FreeBSD's numbers (ENOBUFS 55, EOPNOTSUPP 45,
    EAFNOSUPPORT 47), while .errno is the host's (pfkey.errors)."""
    cases = {m[0]: m for m in MALFORMED}
    for name, wire in (("2056 bytes > MCLBYTES", 55), ("RSVP satype", 45),
                       ("AF_LOCAL addresses", 47), ("version 1", 22)):
        with pytest.raises(PfkeyError) as info:
            decode(cases[name][1])
        assert info.value.wire_errno == wire


# -- boundaries that must be *accepted* --------------------------------------

def test_exactly_mclbytes_is_accepted() -> None:
    """key_parse refuses only messages *longer* than MCLBYTES (2048)."""
    body = b"".join(ext(5, t, bytes(36)) for t in (31,)) + ext(4, 3, bytes(28))
    filler = ext((2048 - 16 - len(body)) // 8, 8, bytes(2048 - 16 - len(body) - 4))
    data = msg(ADD, ESP, body, filler)
    assert len(data) == 2048
    decode(data)


@pytest.mark.parametrize("scope", [0, 1, 2, 4])
def test_spddump_scopes_accepted(scope: int) -> None:
    """key_parse: SPDDUMP's satype is an IPSEC_POLICYSCOPE mask: ANY/GLOBAL/IFNET/PCB."""
    decode(msg(SPDDUMP, scope))


def test_promisc_satype_1_accepted() -> None:
    """key_parse: satype 1 is allowed for X_PROMISC only."""
    decode(msg(PROMISC, 1))


def test_prefix_zero_is_valid() -> None:
    """key_parse: prefixlen 0 is valid (match all addresses)."""
    decode(msg(SPDADD, 0, POL_OUT, addr(5, sin(), plen=0), addr(6, sin(), plen=0)))


def test_address_check_needs_both() -> None:
    """key_parse checks src/dst only when both are present: a lone bad src passes
    key_parse (the handler's key_checksockaddrs reports it later)."""
    decode(msg(GETSPI, ESP, addr(5, sin(sa_len=24))))


def test_malformed_policy_requests_reach_the_handler() -> None:
    """key_align does not look inside sadb_x_policy; key_msg2sp rejects a bad
    request later (EINVAL reply), so decode keeps the bytes in ``trailer``."""
    bad_req = bytes.fromhex("0400 3200 01 02 0000")  # len 4 < 8
    pol = ext(3, 18, bytes.fromhex("0200 02 00 00000000 00000000") + bad_req)
    m = decode(msg(SPDADD, 0, pol, SRC, DST))
    assert m.policy is not None and m.policy.requests == () and m.policy.trailer == bad_req
