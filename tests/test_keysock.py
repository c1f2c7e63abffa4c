"""PF_KEY sockets (keysock.c): delivery targets, promiscuous copies, bounded
receive buffers, send-time errors, blocking receive, threads.

Reference pfkey_setkey_reference.md §A.1, §B.1, §C.
"""

from __future__ import annotations

import errno
import threading

import pytest

from pfkey import Message, SadbXPolicy, decode
from pfkey.errors import FREEBSD_ERRNO as W
from pfkey.errors import Delivery, PfkeyError
from pfkey.extensions import RawExtension
from pfkey.key_testing import (
    E, ESP, KeyHarness, add_msg, drain, exchange, getspi_msg, hdr_msg, sa_req_msg,
    spd_msg, spdid_msg, update_msg,
)
from pfkey.pfkeyv2 import SADB
from thread_helpers import run_threads

KEYS = {E.KEY_AUTH, E.KEY_ENCRYPT}


class World:
    """Sender S, plain O, registered R, promiscuous P on one kernel."""

    def __init__(self) -> None:
        self.h = KeyHarness()
        self.S = self.h.socket()
        self.O = self.h.socket()
        self.R = self.h.socket()
        self.P = self.h.socket()
        exchange(self.R, Message(SADB.REGISTER, ESP))
        exchange(self.P, hdr_msg(SADB.X_PROMISC, 1))
        self.clear()

    def clear(self) -> None:
        for so in (self.S, self.O, self.R, self.P):
            so.recv_all()

    def read(self) -> dict[str, list[Message]]:
        return {n: drain(getattr(self, n)) for n in "SORP"}


def _prep_spi(w: World) -> None:
    exchange(w.S, add_msg(0x1000))


def _prep_larval(w: World) -> None:
    exchange(w.S, getspi_msg(spirange=(0x1000, 0x1000)))


def _prep_sp(w: World) -> None:
    exchange(w.S, spd_msg())


# (name, preparation, request, who gets a plain copy)
MATRIX = [
    ("GETSPI", None, getspi_msg(), "S"),
    ("UPDATE", _prep_larval, update_msg(0x1000), "SORP"),
    ("ADD", None, add_msg(0x1000), "SORP"),
    ("DELETE", _prep_spi, sa_req_msg(SADB.DELETE, 0x1000), "SORP"),
    ("DELETE-all", _prep_spi, sa_req_msg(SADB.DELETE, None), "SORP"),
    ("GET", _prep_spi, sa_req_msg(SADB.GET, 0x1000), "S"),
    ("FLUSH", _prep_spi, Message(SADB.FLUSH, 0), "SORP"),
    ("DUMP", _prep_spi, Message(SADB.DUMP, 0), "S"),
    ("REGISTER", None, Message(SADB.REGISTER, ESP), "SR"),
    ("REGISTER-UNSPEC", None, Message(SADB.REGISTER, 0), "SR"),
    ("X_PROMISC-off", None, hdr_msg(SADB.X_PROMISC, 0), "SORP"),
    ("SPDADD", None, spd_msg(), "SORP"),
    ("SPDUPDATE", None, spd_msg(SADB.X_SPDUPDATE), "SORP"),
    ("SPDSETIDX", None, spd_msg(SADB.X_SPDSETIDX), "SORP"),
    ("SPDDELETE", _prep_sp, spd_msg(SADB.X_SPDDELETE), "SORP"),
    ("SPDDELETE2", _prep_sp, spdid_msg(SADB.X_SPDDELETE2, 1), "SORP"),
    ("SPDGET", _prep_sp, spdid_msg(SADB.X_SPDGET, 1), "S"),
    ("SPDDUMP", _prep_sp, Message(SADB.X_SPDDUMP, 0), "S"),
    ("SPDFLUSH", _prep_sp, Message(SADB.X_SPDFLUSH, 0), "SORP"),
    ("error reply", None, sa_req_msg(SADB.GET, 0x7777), "S"),
    ("parse error reply", None, Message(SADB.ADD, 0), "S"),
]


@pytest.mark.parametrize("name,prep,msg,who", MATRIX, ids=[m[0] for m in MATRIX])
def test_routing_matrix(name: str, prep, msg: Message, who: str) -> None:
    """key_sendup_mbuf: ONE -> sender; ALL -> every socket; REGISTERED ->
    registered sockets plus the sender; every promiscuous socket first gets
    an X_PROMISC-wrapped copy of each kernel message, whatever its target."""
    w = World()
    if prep is not None:
        prep(w)
        w.clear()
    w.S.send(msg.encode())
    got = w.read()
    plain = {n: [m for m in msgs if m.type != SADB.X_PROMISC or n != "P"]
             for n, msgs in got.items()}
    wrapped = [m for m in got["P"] if m.type == SADB.X_PROMISC]
    for n in "SOR":
        assert bool(plain[n]) == (n in who), (n, plain[n])
    if name != "X_PROMISC-off":
        assert bool(plain["P"]) == ("P" in who)
        # one wrapped copy per kernel message, placed before the plain copy
        assert len(wrapped) == len(plain["S"])
        for wm, sm in zip(wrapped, plain["S"]):
            assert wm.inner == sm.encode()
            assert wm.seq == wm.pid == wm.errno == wm.satype == 0
    for n in "OR":
        for m in plain[n]:
            assert not KEYS & set(m.ext_types), f"{name}: keys leaked to {n}"
    for m in wrapped:
        if m.inner is None:
            continue
        inner = decode(m.inner, strict=False)
        if inner.type in (SADB.ADD, SADB.UPDATE):
            assert not KEYS & set(inner.ext_types)


def test_kernel_messages_go_to_registered_only() -> None:
    """key_sendup_mbuf(REGISTERED, so=NULL): ACQUIRE / EXPIRE / SPDEXPIRE
    reach registered sockets (and promiscuous ones, wrapped), nobody else."""
    w = World()
    w.h.key.key_acquire(__import__("pfkey.keydb", fromlist=["x"]).secasindex.make(
        50, 0, 0, add_msg().src.addr, add_msg().dst.addr), None)
    got = w.read()
    assert [m.type for m in got["R"]] == [SADB.ACQUIRE]
    assert got["S"] == got["O"] == []
    assert [m.type for m in got["P"]] == [SADB.X_PROMISC]


def test_promisc_sender_gets_two_copies_wrapped_first() -> None:
    """key_sendup_mbuf: a promiscuous socket that is also a recipient gets
    the message twice, the X_PROMISC copy first."""
    w = World()
    w.P.send(add_msg(0x1000).encode())
    got = drain(w.P)
    assert [m.type for m in got] == [SADB.X_PROMISC, SADB.ADD]
    assert got[0].inner == got[1].encode()


def test_promisc_payload_is_broadcast_stripped() -> None:
    """key_promisc: a longer X_PROMISC message loses its header and the rest
    goes to ALL as is; an invalid mode is EINVAL; user messages are never
    mirrored to promiscuous sockets."""
    w = World()
    payload = SadbXPolicy(2, 2).pack()
    w.S.send(hdr_msg(SADB.X_PROMISC, 1).replace(exts=(SadbXPolicy(2, 2),)).encode())
    for n in "SOR":
        assert getattr(w, n).recv_all() == [payload]
    assert w.P.recv_all()[-1] == payload
    (err,) = exchange(w.S, hdr_msg(SADB.X_PROMISC, ESP))
    assert err.errno == W["EINVAL"]


def test_send_time_errors_raise() -> None:
    """keysock key_send / key_parse / key_align: short, length mismatch,
    unknown or duplicate extension, over MCLBYTES, over the send buffer:
    send() fails and nothing is queued."""
    h = KeyHarness()
    so = h.socket()
    good = add_msg().encode()
    cases = [
        (good[:8], errno.EINVAL),
        (good + bytes(8), errno.EINVAL),
        (Message(SADB.ADD, ESP, exts=(RawExtension(17, bytes(4)),)).encode(), errno.EINVAL),
        (Message(SADB.ADD, ESP, exts=(add_msg().src, add_msg().src)).encode(), errno.EINVAL),
        (Message(SADB.ADD, ESP, exts=(RawExtension(7, bytes(2044)),)).encode(),
         errno.ENOBUFS),
        (bytes(8200), errno.EMSGSIZE),
    ]
    for data, code in cases:
        with pytest.raises(PfkeyError) as ei:
            so.send(data)
        assert ei.value.errno == code and ei.value.delivery is Delivery.SEND
    assert so.pending() == 0
    so.close()
    with pytest.raises(OSError) as ei2:
        so.send(good)
    assert ei2.value.errno == errno.EBADF


def test_full_receive_buffer_drops_and_flags_overflow() -> None:
    """key_sendup0 / sbappendaddr: a copy that does not fit the receiver's
    buffer (net.key.recvspace) is dropped and the overflow counted; the
    kernel never blocks and other sockets still get theirs."""
    h = KeyHarness()
    small = h.socket(recvspace=170)
    so = h.socket()
    for i in range(4):
        so.send(add_msg(0x1000 + i).encode())
    assert small.pending() == 2 and small.overflow == 2
    assert small.rcv_cc <= 170
    assert len(drain(so)) == 4
    assert len(h.key.savhash) == 4


def test_receive_upcall_runs_per_queued_record_not_for_drops() -> None:
    """soupcall_set(SO_RCV) / sorwakeup: the upcall given at creation runs
    once per record queued (replies and broadcasts), not for a copy dropped
    on overflow; soupcall_set(None) clears it."""
    h = KeyHarness()
    seen: list[int] = []
    small = h.socket(recvspace=170, upcall=lambda: seen.append(1))
    so = h.socket()
    for i in range(4):
        so.send(add_msg(0x1000 + i).encode())
    assert small.pending() == 2 and small.overflow == 2 and len(seen) == 2
    drain(small)
    small.soupcall_set(None)
    so.send(add_msg(0x2000).encode())
    assert small.pending() == 1 and len(seen) == 2


def test_sender_buffer_full_send_fails_enobufs_but_sa_exists() -> None:
    """keysock key_send returns key_sendup_mbuf's error: when the sender's
    own reply does not fit, send() fails ENOBUFS though the SA was added."""
    h = KeyHarness()
    so = h.socket(recvspace=100)
    so.send(add_msg(0x1000).encode())
    with pytest.raises(PfkeyError) as ei:
        so.send(add_msg(0x1001).encode())
    assert ei.value.errno == errno.ENOBUFS
    assert 0x1001 in h.key.savhash and so.overflow == 1


def test_so_rerror_reports_overflow_once() -> None:
    """soroverflow with SO_RERROR: the next recv fails ENOBUFS, once."""
    h = KeyHarness()
    rx = h.socket(recvspace=90, so_rerror=True)
    tx = h.socket()
    tx.send(add_msg(0x1000).encode())
    tx.send(add_msg(0x1001).encode())
    with pytest.raises(OSError) as ei:
        rx.recv_nowait()
    assert ei.value.errno == errno.ENOBUFS
    assert decode(rx.recv_nowait(), strict=False).sa.spi == 0x1000


def test_recv_nonblocking_timeout_and_wakeup() -> None:
    """A PF_KEY socket read: EAGAIN without data (non-blocking), ETIMEDOUT
    after a timeout, and a blocked reader wakes on delivery or close."""
    h = KeyHarness()
    so = h.socket()
    with pytest.raises(BlockingIOError):
        so.recv_nowait()
    with pytest.raises(TimeoutError):
        so.recv(timeout=0.01)
    got: list[bytes] = []
    t = threading.Thread(target=lambda: got.append(so.recv(timeout=10)))
    t.start()
    h.socket().send(add_msg(0x1000).encode())
    t.join(10)
    assert len(got) == 1
    errs: list[int] = []

    def reader() -> None:
        try:
            so.recv(timeout=10)
        except OSError as exc:
            errs.append(exc.errno)
    t = threading.Thread(target=reader)
    t.start()
    so.close()
    t.join(10)
    assert errs == [errno.EBADF]


def test_sockets_attached_newest_first() -> None:
    """key_attach: LIST_INSERT_HEAD, so broadcast copies reach the newest
    socket first (observable through promiscuous wrapped copies' order)."""
    h = KeyHarness()
    a, b = h.socket(), h.socket()
    assert h.key.keysock.sockets[:2] == [b, a]
    b.close()
    assert b not in h.key.keysock.sockets


def test_concurrent_senders_keep_database_consistent() -> None:
    """Several threads, each with its own socket, adding, getting SPIs and
    deleting at once; the SPI namespace stays unique and _check() holds."""
    h = KeyHarness()
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            so = h.socket(recvspace=1 << 20)
            for i in range(60):
                so.send(add_msg(0x10000 + n * 1000 + i).encode())
                so.send(getspi_msg(spirange=(0x100, 0x400)).encode())
                if i % 3 == 0:
                    so.send(sa_req_msg(SADB.DELETE, 0x10000 + n * 1000 + i).encode())
                so.recv_all()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
    run_threads(worker, [(n,) for n in range(4)], 60)
    assert not errors
    h.key._check()
    larval = [s for s in h.key.savhash.values() if s.state == 0]
    assert len(larval) == 240 and len({s.spi for s in larval}) == 240
