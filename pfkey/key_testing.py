"""Helpers for tests of the key engine (in the spirit of ``trio.testing``).

Message builders with sensible defaults for every PF_KEY request the engine
handles, a ``KeyHarness`` holding a kernel on a ``FakeClock`` with a seeded
random source, and ``exchange`` / ``drain`` to send and read decoded
replies.  Used by the project's own tests and meant for anyone writing
edge-case tests against ``pfkey.key.Key``.

Defaults: IPv4 10.0.0.1 -> 10.0.0.2, ESP with AES-CBC-128 + HMAC-SHA1,
replay window 4 bytes, pid 100.
"""

from __future__ import annotations

import random
from typing import Any, Iterable, Optional, Sequence

from .clock import FakeClock
from .errors import PfkeyError
from .extensions import (
    IpsecRequest, SadbAddress, SadbComb, SadbKey, SadbLifetime, SadbProp, SadbSa,
    SadbSpirange, SadbXIfHwOffl, SadbXPolicy, SadbXSa2, Sockaddr,
)
from .ipsec import IPSEC_DIR, IPSEC_LEVEL, IPSEC_MODE, IPSEC_POLICY
from .key import Key
from .keysock import KeySocket
from .message import Message, decode
from .pfkeyv2 import SADB, SADB_AALG, SADB_EALG, SADB_EXT, SADB_SATYPE

E = SADB_EXT
ESP = int(SADB_SATYPE.ESP)
AH = int(SADB_SATYPE.AH)
IPCOMP = int(SADB_SATYPE.X_IPCOMP)
TCPSIG = int(SADB_SATYPE.X_TCPSIGNATURE)
PID = 100

AUTH_KEY = bytes(range(1, 21))              # 160 bits, HMAC-SHA1
ENC_KEY = bytes(range(0x40, 0x50))          # 128 bits, AES-CBC


def sa_in(addr: str, port: int = 0) -> Sockaddr:
    return Sockaddr.from_ip(addr, port)


def src_ext(addr: str = "10.0.0.1", prefixlen: int = -1, proto: int = 255,
            port: int = 0) -> SadbAddress:
    return SadbAddress(E.ADDRESS_SRC, sa_in(addr, port), prefixlen, proto)


def dst_ext(addr: str = "10.0.0.2", prefixlen: int = -1, proto: int = 255,
            port: int = 0) -> SadbAddress:
    return SadbAddress(E.ADDRESS_DST, sa_in(addr, port), prefixlen, proto)


def lifetimes(hard: tuple[int, int, int, int] = (0, 0, 0, 0),
              soft: tuple[int, int, int, int] = (0, 0, 0, 0)) -> tuple[SadbLifetime, SadbLifetime]:
    """(HARD, SOFT) from (allocations, bytes, addtime, usetime) tuples."""
    return (SadbLifetime(E.LIFETIME_HARD, *hard), SadbLifetime(E.LIFETIME_SOFT, *soft))


def add_msg(spi: int = 0x1000, *, satype: int = ESP, src: str = "10.0.0.1",
            dst: str = "10.0.0.2", auth: int = SADB_AALG.SHA1HMAC,
            enc: int = SADB_EALG.X_AESCBC, auth_key: Optional[bytes] = AUTH_KEY,
            enc_key: Optional[bytes] = ENC_KEY, replay: int = 4, flags: int = 0,
            seq: int = 0, pid: int = PID, mode: Optional[int] = None, reqid: int = 0,
            extra: Sequence[Any] = (), mtype: int = SADB.ADD) -> Message:
    """SADB_ADD (or, with ``mtype``, UPDATE) for one SA."""
    exts: list[Any] = [SadbSa(spi, replay, 1, auth, enc, flags)]
    if mode is not None or reqid:
        exts.append(SadbXSa2(mode or 0, reqid))
    exts += [src_ext(src), dst_ext(dst)]
    if auth_key is not None:
        exts.append(SadbKey(E.KEY_AUTH, auth_key))
    if enc_key is not None:
        exts.append(SadbKey(E.KEY_ENCRYPT, enc_key))
    exts += list(extra)
    return Message(mtype, satype, seq, pid, exts=tuple(exts))


def update_msg(spi: int, **kw: Any) -> Message:
    return add_msg(spi, mtype=SADB.UPDATE, **kw)


def getspi_msg(*, satype: int = ESP, src: str = "10.0.0.1", dst: str = "10.0.0.2",
               spirange: Optional[tuple[int, int]] = None, seq: int = 0, pid: int = PID,
               mode: Optional[int] = None, reqid: int = 0,
               extra: Sequence[Any] = ()) -> Message:
    exts: list[Any] = []
    if mode is not None or reqid:
        exts.append(SadbXSa2(mode or 0, reqid))
    exts += [src_ext(src), dst_ext(dst)]
    if spirange is not None:
        exts.append(SadbSpirange(*spirange))
    exts += list(extra)
    return Message(SADB.GETSPI, satype, seq, pid, exts=tuple(exts))


def sa_req_msg(mtype: int, spi: Optional[int] = 0x1000, *, satype: int = ESP,
               src: str = "10.0.0.1", dst: str = "10.0.0.2", seq: int = 0,
               pid: int = PID) -> Message:
    """DELETE / GET (``spi`` None: no SA extension, i.e. delete-all)."""
    exts: list[Any] = [] if spi is None else [SadbSa(spi)]
    exts += [src_ext(src), dst_ext(dst)]
    return Message(mtype, satype, seq, pid, exts=tuple(exts))


def policy(dir: int = IPSEC_DIR.OUTBOUND, ptype: int = IPSEC_POLICY.IPSEC,
           requests: Optional[Sequence[IpsecRequest]] = None, priority: int = 0,
           id: int = 0) -> SadbXPolicy:
    if requests is None:
        requests = (IpsecRequest(50, IPSEC_MODE.TRANSPORT, IPSEC_LEVEL.REQUIRE),) \
            if ptype == IPSEC_POLICY.IPSEC else ()
    return SadbXPolicy(ptype, dir, id, priority, 0, tuple(requests))


def spd_msg(mtype: int = SADB.X_SPDADD, *, src: str = "10.0.0.0", dst: str = "10.0.1.0",
            prefs: int = 24, prefd: int = 24, proto: int = 255, sport: int = 0,
            dport: int = 0, pol: Optional[SadbXPolicy] = None, seq: int = 0,
            pid: int = PID, lifetime: Optional[tuple[int, int]] = None,
            extra: Sequence[Any] = ()) -> Message:
    """SPDADD / SPDUPDATE / SPDSETIDX / SPDDELETE with a selector."""
    exts: list[Any] = [src_ext(src, prefs, proto, sport), dst_ext(dst, prefd, proto, dport),
                       pol if pol is not None else policy()]
    if lifetime is not None:
        exts.append(SadbLifetime(E.LIFETIME_HARD, 0, 0, lifetime[0], lifetime[1]))
    exts += list(extra)
    return Message(mtype, 0, seq, pid, exts=tuple(exts))


def spdid_msg(mtype: int, spid: int, *, seq: int = 0, pid: int = PID) -> Message:
    """SPDGET / SPDDELETE2 by policy id."""
    return Message(mtype, 0, seq, pid, exts=(SadbXPolicy(IPSEC_POLICY.IPSEC,
                                                         IPSEC_DIR.OUTBOUND, spid),))


def acquire_msg(*, satype: int = ESP, src: str = "10.0.0.1", dst: str = "10.0.0.2",
                seq: int = 0, pid: int = PID) -> Message:
    return Message(SADB.ACQUIRE, satype, seq, pid,
                   exts=(src_ext(src), dst_ext(dst), SadbProp((SadbComb(encrypt=12),), 32)))


def hdr_msg(mtype: int, satype: int = 0, *, seq: int = 0, pid: int = PID,
            errno: int = 0) -> Message:
    return Message(mtype, satype, seq, pid, errno)


def ifhwoffl(name: str) -> SadbXIfHwOffl:
    return SadbXIfHwOffl(name)


class KeyHarness:
    """A kernel on a FakeClock with a seeded RNG, and helpers around it."""

    def __init__(self, seed: int = 1, **kw: Any) -> None:
        self.clock = FakeClock()
        self.key = Key(self.clock, rng=random.Random(seed), **kw)
        self.sockets: list[KeySocket] = []

    def socket(self, **kw: Any) -> KeySocket:
        so = self.key.socket(**kw)
        self.sockets.append(so)
        return so

    def tick(self, seconds: int = 1) -> None:
        """Advance the clock and run the timer once."""
        self.clock.advance(seconds)
        self.key.key_timehandler()


def drain(so: KeySocket) -> list[Message]:
    """Every queued message, decoded the way userland reads them."""
    return [decode(b, strict=False) for b in so.recv_all()]


def exchange(so: KeySocket, msg: Message | bytes) -> list[Message]:
    """Send ``msg`` on ``so`` and return what ``so`` then holds, decoded.

    A send-time failure propagates as the ``PfkeyError`` FreeBSD's send(2)
    would fail with.
    """
    data = msg.encode() if isinstance(msg, Message) else msg
    so.send(data)
    return drain(so)


def reply_errno(so: KeySocket, msg: Message | bytes) -> int:
    """Send and return the single reply's (wire) errno; -1 if no reply."""
    got = exchange(so, msg)
    return got[-1].errno if got else -1


__all__ = [
    "E", "ESP", "AH", "IPCOMP", "TCPSIG", "PID", "AUTH_KEY", "ENC_KEY", "sa_in", "src_ext",
    "dst_ext", "lifetimes", "add_msg", "update_msg", "getspi_msg", "sa_req_msg",
    "policy", "spd_msg", "spdid_msg", "acquire_msg", "hdr_msg", "ifhwoffl", "KeyHarness",
    "drain", "exchange", "reply_errno", "PfkeyError", "Iterable",
]
