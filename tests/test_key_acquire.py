"""SADB_REGISTER, SADB_ACQUIRE (kernel and userland) and the packet-side SA
lookups of key.c (reference pfkey_setkey_reference.md §B.2 REGISTER /
ACQUIRE, §B.4)."""

from __future__ import annotations

from pfkey import Message, SadbAlg
from pfkey.errors import FREEBSD_ERRNO as W
from pfkey.ipsec import IPSEC_DIR, IPSEC_MODE
from pfkey.key_testing import (
    AH, E, ESP, KeyHarness, acquire_msg, add_msg, drain, exchange,
    getspi_msg, hdr_msg, lifetimes, reply_errno, sa_in, spd_msg, policy,
)
from pfkey.keydb import secasindex
from pfkey.pfkeyv2 import SADB

OUT = IPSEC_DIR.OUTBOUND


def saidx(proto: int = 50, dst: str = "10.0.0.2", reqid: int = 0,
          mode: int = IPSEC_MODE.TRANSPORT) -> secasindex:
    return secasindex.make(proto, mode, reqid, sa_in("10.0.0.1"), sa_in(dst))


def registered(h: KeyHarness, satype: int = ESP):
    so = h.socket()
    assert reply_errno(so, Message(SADB.REGISTER, satype, pid=9)) == 0
    return so


# ---------------------------------------------------------------------------
# SADB_REGISTER
# ---------------------------------------------------------------------------

def test_register_lists_supported_algorithms() -> None:
    """key_register: header + SUPPORTED_AUTH + SUPPORTED_ENCRYPT, one
    sadb_alg per supported id ascending, sizes in bits (§B.2 list)."""
    h = KeyHarness()
    (rep,) = exchange(h.socket(), Message(SADB.REGISTER, ESP, seq=3, pid=9))
    assert rep.errno == 0 and rep.seq == 3 and rep.satype == ESP
    assert rep.ext_types == (E.SUPPORTED_AUTH, E.SUPPORTED_ENCRYPT)
    auth = [(a.id, a.ivlen, a.minbits, a.maxbits) for a in rep.get(E.SUPPORTED_AUTH).algs]
    assert auth == [(3, 0, 160, 160), (5, 0, 256, 256), (6, 0, 384, 384), (7, 0, 512, 512),
                    (11, 0, 128, 128), (12, 0, 128, 128), (13, 0, 128, 128),
                    (14, 0, 128, 128), (251, 0, 8, 2048)]
    enc = rep.get(E.SUPPORTED_ENCRYPT).algs
    assert enc == (SadbAlg(11, 0, 0, 2048), SadbAlg(12, 16, 128, 256),
                   SadbAlg(13, 16, 128, 256), SadbAlg(15, 12, 256, 256),
                   SadbAlg(20, 12, 128, 256), SadbAlg(23, 12, 128, 256))


def test_register_unspec_does_not_register() -> None:
    """key_register: satype UNSPEC returns the lists without registering."""
    h = KeyHarness()
    so = h.socket()
    assert reply_errno(so, Message(SADB.REGISTER, 0)) == 0
    assert so.kp_registered == 0
    assert reply_errno(so, Message(SADB.REGISTER, 0)) == 0


def test_register_twice_eexist_other_type_ok() -> None:
    """key_register: the same socket for the same satype again is EEXIST;
    another satype is a second registration."""
    h = KeyHarness()
    so = registered(h)
    assert reply_errno(so, Message(SADB.REGISTER, ESP)) == W["EEXIST"]
    assert reply_errno(so, Message(SADB.REGISTER, AH)) == 0
    assert so.kp_registered == 2
    h.key._check()


def test_register_reply_reaches_registered_sockets() -> None:
    """key_sendup_mbuf(REGISTERED): the REGISTER reply goes to the sender and
    to every socket registered for any satype, not to the others."""
    h = KeyHarness()
    reg_ah = registered(h, AH)
    plain = h.socket()
    so = h.socket()
    exchange(so, Message(SADB.REGISTER, ESP))
    assert [m.type for m in drain(reg_ah)] == [SADB.REGISTER]
    assert drain(plain) == []


def test_close_frees_registrations() -> None:
    """key_detach -> key_freereg: a closed socket is no longer registered."""
    h = KeyHarness()
    so = registered(h)
    so.close()
    assert all(so not in r for r in h.key.regtree)
    h.key._check()


# ---------------------------------------------------------------------------
# Kernel-generated SADB_ACQUIRE
# ---------------------------------------------------------------------------

def test_allocsa_policy_acquire_format() -> None:
    """key_allocsa_policy -> key_acquire: no SA, so an ACQUIRE goes to the
    registered sockets only: pid 0, seq 1, SRC/DST with full prefix and
    proto any, the policy's header, PROPOSAL (replay 32, ESP ciphers with
    at least esp_keymin bits)."""
    h = KeyHarness()
    reg, plain = registered(h), h.socket()
    exchange(plain, spd_msg(pol=policy(priority=7)))
    drain(reg)
    sp = h.key.sphash[1]
    sav, err = h.key.key_allocsa_policy(sp, saidx())
    assert sav is None and err == 0
    assert drain(plain) == []
    (acq,) = drain(reg)
    assert acq.type == SADB.ACQUIRE and acq.satype == ESP and acq.seq == 1 and acq.pid == 0
    assert acq.ext_types == (E.ADDRESS_SRC, E.ADDRESS_DST, E.X_POLICY, E.PROPOSAL)
    assert acq.src.prefixlen == 32 and acq.src.proto == 255 and str(acq.dst.addr) == "10.0.0.2"
    assert (acq.policy.id, acq.policy.priority, acq.policy.dir) == (1, 7, OUT)
    assert acq.policy.requests == ()
    prop = acq.get(E.PROPOSAL)
    assert prop.replay == 32
    assert [(c.encrypt, c.encrypt_minbits, c.encrypt_maxbits) for c in prop.combs] == [
        (11, 256, 2048), (12, 256, 256), (13, 256, 256), (15, 256, 256), (20, 256, 256),
        (23, 256, 256)]
    c = prop.combs[0]
    assert (c.soft_allocations, c.hard_allocations, c.hard_addtime, c.soft_addtime,
            c.soft_usetime, c.hard_usetime) == (1, 1, 86400, 0, 28800, 0)


def test_acquire_blocking_and_retransmit_same_seq() -> None:
    """key_getacq: later triggers only count; once the count exceeds
    blockacq_count (10) the ACQUIRE is re-sent with the same seq."""
    h = KeyHarness()
    reg = registered(h)
    idx = saidx()
    h.key.key_allocsa_policy(None, idx)
    (first,) = drain(reg)
    for _ in range(11):
        h.key.key_allocsa_policy(None, idx)
    assert drain(reg) == []
    h.key.key_allocsa_policy(None, idx)
    (again,) = drain(reg)
    assert again.seq == first.seq == 1
    h.key.key_allocsa_policy(None, saidx(dst="10.0.0.3"))
    assert drain(reg)[0].seq == 2
    h.key._check()


def test_acquire_ports_and_prefix_from_tcp_policy() -> None:
    """key_acquire: with a TCP/UDP policy that has ports, the addresses carry
    the policy's port, prefix length and protocol."""
    h = KeyHarness()
    reg = registered(h)
    exchange(h.socket(), spd_msg(proto=6, dport=443, prefd=24))
    drain(reg)
    h.key.key_allocsa_policy(h.key.sphash[1], saidx())
    (acq,) = drain(reg)
    assert acq.src.proto == 6 and acq.src.prefixlen == 32 and acq.src.addr.port == 0
    assert acq.dst.proto == 6 and acq.dst.prefixlen == 24 and acq.dst.addr.port == 443


def test_acquire_sa2_only_with_reqid_and_proposals_per_protocol() -> None:
    """key_acquire / key_getprop: SA2 only when reqid != 0; AH proposes the
    SHA HMACs (descending ids), IPComp deflate, TCP-MD5 no proposal."""
    h = KeyHarness()
    reg = registered(h)
    h.key.key_allocsa_policy(None, saidx(proto=51, reqid=0x4001, mode=IPSEC_MODE.TUNNEL))
    (acq,) = drain(reg)
    assert acq.satype == AH and acq.sa2.reqid == 0x4001 and acq.sa2.mode == IPSEC_MODE.TUNNEL
    assert [c.auth for c in acq.get(E.PROPOSAL).combs] == [7, 6, 5, 3]
    assert [c.auth_minbits for c in acq.get(E.PROPOSAL).combs] == [512, 384, 256, 160]
    h.key.key_allocsa_policy(None, saidx(proto=108))
    (acq,) = drain(reg)
    assert [c.encrypt for c in acq.get(E.PROPOSAL).combs] == [2]
    h.key.key_acquire(saidx(proto=6, mode=IPSEC_MODE.TCPMD5), None)
    (acq,) = drain(reg)
    assert not acq.has(E.PROPOSAL)


def test_acq_entry_expires_after_blockacq_lifetime() -> None:
    """key_flush_acq: entries older than blockacq_lifetime (20 s) go; the
    next trigger sends a fresh ACQUIRE with a new seq."""
    h = KeyHarness()
    reg = registered(h)
    h.key.key_allocsa_policy(None, saidx())
    drain(reg)
    h.tick(20)
    h.key.key_allocsa_policy(None, saidx())
    assert drain(reg) == []
    h.tick(1)
    assert not h.key.acqtree
    h.key.key_allocsa_policy(None, saidx())
    assert drain(reg)[0].seq == 2


def test_add_with_acquire_seq_marks_entry_done() -> None:
    """key_add -> key_acqdone: an ADD carrying the ACQUIRE's seq (and the same
    index) zeroes the entry's created time; the next tick purges it."""
    h = KeyHarness()
    reg = registered(h)
    idx = saidx(mode=IPSEC_MODE.TRANSPORT)
    h.key.key_allocsa_policy(None, idx)
    (acq,) = drain(reg)
    ike = h.socket()
    assert reply_errno(ike, add_msg(0x1000, seq=acq.seq, mode=IPSEC_MODE.TRANSPORT)) == 0
    (entry,) = h.key.acqtree
    assert entry.created == 0
    h.tick(1)
    assert not h.key.acqtree


def test_getspi_with_acquire_seq_marks_entry_done() -> None:
    """key_getspi -> key_acqdone: likewise for GETSPI with the ACQUIRE seq."""
    h = KeyHarness()
    reg = registered(h)
    h.key.key_allocsa_policy(None, saidx(mode=0))
    (acq,) = drain(reg)
    (rep,) = exchange(h.socket(), getspi_msg(seq=acq.seq))
    assert rep.seq == acq.seq
    assert next(iter(h.key.acqtree)).created == 0


def test_acquire2_error_report_resets_entry() -> None:
    """key_acquire2: a header-only ACQUIRE with seq and errno resets that
    entry (count 0, created now); there is never a reply."""
    h = KeyHarness()
    reg = registered(h)
    h.key.key_allocsa_policy(None, saidx())
    drain(reg)
    for _ in range(5):
        h.key.key_allocsa_policy(None, saidx())
    h.clock.advance(3)
    so = h.socket()
    assert exchange(so, hdr_msg(SADB.ACQUIRE, ESP, seq=1, errno=W["ENOENT"])) == []
    (entry,) = h.key.acqtree
    assert entry.count == 0 and entry.created == h.clock.now()
    assert exchange(so, hdr_msg(SADB.ACQUIRE, ESP, seq=1)) == []      # errno 0: ignored


def test_acquire2_generates_acquire_without_reply() -> None:
    """key_acquire2: SRC, DST and PROPOSAL from userland make the kernel send
    an ACQUIRE (no policy extension) to registered sockets; no direct reply;
    EEXIST when an SA head exists; missing PROPOSAL is EINVAL."""
    h = KeyHarness()
    reg = registered(h)
    so = h.socket()
    assert exchange(so, acquire_msg()) == []
    (acq,) = drain(reg)
    assert acq.type == SADB.ACQUIRE and not acq.has(E.X_POLICY)
    assert reply_errno(so, acquire_msg().replace(
        exts=acquire_msg().exts[:2])) == W["EINVAL"]
    exchange(so, add_msg(0x1000))
    assert reply_errno(so, acquire_msg()) == W["EEXIST"]


# ---------------------------------------------------------------------------
# Packet-side SA lookups
# ---------------------------------------------------------------------------

def test_allocsa_policy_prefers_oldest_alive() -> None:
    """key_allocsa_policy: preferred_oldsa = 1 picks the oldest MATURE/DYING
    SA of the matching SAH (TAILQ_LAST); 0 picks the newest."""
    h = KeyHarness()
    so = h.socket()
    exchange(so, add_msg(0x1001, extra=lifetimes((0, 0, 100, 0), (0, 0, 5, 0))))
    h.clock.advance(1)
    exchange(so, add_msg(0x1002))
    h.tick(5)                                  # 0x1001 is DYING now
    assert h.key.savhash[0x1001].state == 2
    sav, err = h.key.key_allocsa_policy(None, saidx())
    assert err == 0 and sav.spi == 0x1001
    h.key.sysctl("net.key.preferred_oldsa", 0)
    assert h.key.key_allocsa_policy(None, saidx())[0].spi == 0x1002


def test_allocsa_inbound_by_dst_proto_spi() -> None:
    """key_allocsa: SPI hash, then proto and destination must match; LARVAL
    SAs are never returned."""
    h = KeyHarness()
    so = h.socket()
    exchange(so, add_msg(0x1000))
    exchange(so, getspi_msg(spirange=(0x1001, 0x1001)))
    k = h.key
    assert k.key_allocsa(sa_in("10.0.0.2"), 50, 0x1000).spi == 0x1000
    assert k.key_allocsa(sa_in("10.0.0.2", 4500), 50, 0x1000) is not None
    assert k.key_allocsa(sa_in("10.0.0.2"), 51, 0x1000) is None
    assert k.key_allocsa(sa_in("10.0.0.9"), 50, 0x1000) is None
    assert k.key_allocsa(sa_in("10.0.0.2"), 50, 0x1001) is None
    assert k.key_allocsa(sa_in("10.0.0.2"), 50, 0x9999) is None
