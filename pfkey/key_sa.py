"""SAD message handlers of FreeBSD's ``sys/netipsec/key.c``.

key_getspi, key_update (+ key_updateaddresses), key_add, key_delete (+
key_delete_all), key_get, key_flush, key_dump, and what they share:
key_unlinksav, key_setdumpsa, key_getmsgbuf_x1, key_getsav_tcpmd5 (SA
creation and validation -- key_newsav, key_setsaval -- is ``key_saval``).

Each handler takes ``(so, mhp)`` and returns key_sendup_mbuf's result;
a refusal raises a ``PfkeyError`` that ``Key.key_parse`` turns into
key_senderror's echo.  Reference: pfkey_setkey_reference.md §B.2, §B.3.

Locking: the whole of a handler's database work runs under ``sahtree_lock``
(FreeBSD takes it piecewise and relies on reference counts in between; one
critical section gives the same outcomes without modelling refcounts), and
GETSPI / ADD hold ``spi_alloc_lock`` around choosing the SPI and linking the
SA, as key.c does.
"""

from __future__ import annotations

import errno as _errno
from typing import TYPE_CHECKING, Any, Optional

import attrs

from .extensions import SadbLifetime, SadbSa, SadbXNatTPort, SadbXNatTType
from .hooks import IF_SA_CNT_WHICH
from .ipsec import IPPROTO_ESP, IPPROTO_TCP, IPSEC_MODE, IPSEC_PROTO_ANY
from .key_msg import (
    E,
    EINVAL, key_current_lifetime, key_error, key_gather_mbuf, key_setkey, key_setlifetime,
    key_setsadbaddr, key_setsadbmsg, key_setsadbsa, key_setsadbxsa2, key_setsadbxsareplay,
    sadb_msghdr,
)
from .keydb import (
    CMP_HEAD, CMP_MODE_REQID, DEAD, IPSEC_NATT_F_OAI, IPSEC_NATT_F_OAR, LARVAL,
    MATURE, SAEvent, key_checksockaddrs, key_cmpsaidx, sa_next_state, secashead,
    secasindex, secasvar, seclifetime,
)
from .keysock import KEY_SENDUP_ALL, KEY_SENDUP_ONE
from .pfkeyv2 import (
    SADB, SADB_SATYPE, SADB_X_EXT_CLONED, UDP_ENCAP_ESPINUDP,
)

if TYPE_CHECKING:  # pragma: no cover
    from .key_iface import KeyEngine
    from .keysock import KeySocket


_SATYPE2PROTO: dict[int, int] = {SADB_SATYPE.UNSPEC: IPSEC_PROTO_ANY, SADB_SATYPE.AH: 51,
                                  SADB_SATYPE.ESP: 50, SADB_SATYPE.X_IPCOMP: 108,
                                  SADB_SATYPE.X_TCPSIGNATURE: 6}
_PROTO2SATYPE: dict[int, int] = {51: int(SADB_SATYPE.AH), 50: int(SADB_SATYPE.ESP),
                                  108: int(SADB_SATYPE.X_IPCOMP),
                                  6: int(SADB_SATYPE.X_TCPSIGNATURE)}

UINT32_80PCT = 0xCCCCCCCC

# SA types as plain ints (IntEnum comparisons are slow on the ADD path).
_ST_AH = int(SADB_SATYPE.AH)
_ST_ESP = int(SADB_SATYPE.ESP)


def key_satype2proto(satype: int) -> int:
    """SADB_SATYPE -> IPPROTO (0 = invalid; UNSPEC -> IPSEC_PROTO_ANY)."""
    return _SATYPE2PROTO.get(satype, 0)


def key_proto2satype(proto: int) -> int:
    return _PROTO2SATYPE.get(proto, 0)


def _finish(hdr: bytearray, *parts: bytes) -> bytes:
    out = bytes(hdr) + b"".join(parts)
    n = len(out) >> 3
    return out[:4] + bytes((n & 0xFF, (n >> 8) & 0xFF)) + out[6:]


# key_getmsgbuf_x1's gather list (ADD and UPDATE replies; never the keys).
_X1_TYPES = (E.SA, E.X_SA2, E.ADDRESS_SRC, E.ADDRESS_DST, E.LIFETIME_HARD,
             E.LIFETIME_SOFT, E.IDENTITY_SRC, E.IDENTITY_DST, E.X_NAT_T_TYPE,
             E.X_NAT_T_SPORT, E.X_NAT_T_DPORT, E.X_NAT_T_OAI, E.X_NAT_T_OAR,
             E.X_NEW_ADDRESS_SRC, E.X_NEW_ADDRESS_DST)
_X1_TYPES_INT = tuple(int(t) for t in _X1_TYPES)


def key_getmsgbuf_x1(mhp: sadb_msghdr) -> bytes:
    return key_gather_mbuf(mhp, *_X1_TYPES_INT)


class KeySAMixin:
    """The SAD handlers; mixed into ``pfkey.key.Key``."""

    # -- small SAD helpers ----------------------------------------------------

    def _sav_transition(self: "KeyEngine", sav: secasvar, event: SAEvent) -> None:
        """Move an SA along SA_STATE_TABLE; a move to DEAD calls the forget
        hook right after the state change, as key.c does everywhere."""
        new = sa_next_state(sav.state, event)
        sav.state = new
        self.sad_genid += 1
        if new == DEAD:
            self.hooks.ipsec_accel_forget_sav(sav)

    def key_checkspidup(self: "KeyEngine", spi: int) -> bool:
        return spi in self.savhash

    def key_getsavbyspi(self: "KeyEngine", spi: int) -> Optional[secasvar]:
        return self.savhash.get(spi)

    def _alive_pick(self: "KeyEngine", sah: secashead) -> Optional[secasvar]:
        """TAILQ_LAST (oldest) with preferred_oldsa, else TAILQ_FIRST (newest)."""
        alive = sah.savtree_alive
        if not alive:
            return None
        if self.preferred_oldsa:
            return next(iter(alive))
        return next(reversed(alive))

    def key_unlinksav(self: "KeyEngine", sav: secasvar) -> None:
        """key_unlinksav: take an SA out of its SAH and the SPI hash -> DEAD."""
        with self.sahtree_lock:
            if sav.state == DEAD:
                return
            sah = sav.sah
            assert sah is not None
            if sav.state == LARVAL:
                sah.savtree_larval.pop(sav, None)
            else:
                sah.savtree_alive.pop(sav, None)
            if self.savhash.get(sav.spi) is sav:
                del self.savhash[sav.spi]
            self._sav_transition(sav, SAEvent.DELETE)

    # -- SADB_GETSPI --------------------------------------------------------------

    def key_getspi(self: "KeyEngine", so: Optional["KeySocket"], mhp: sadb_msghdr) -> int:
        """key_getspi: allocate an SPI, create a LARVAL SA; reply ONE."""
        ext = mhp.ext
        if E.ADDRESS_SRC not in ext or E.ADDRESS_DST not in ext:
            raise EINVAL("GETSPI needs ADDRESS_SRC and ADDRESS_DST")
        sa2 = ext.get(E.X_SA2)
        mode, reqid = (sa2.mode, sa2.reqid) if sa2 is not None else (0, 0)
        proto = key_satype2proto(mhp.msg.satype)
        if proto == 0:
            raise EINVAL("invalid SA type")
        src0, dst0 = ext[E.ADDRESS_SRC], ext[E.ADDRESS_DST]
        if key_checksockaddrs(src0.addr, dst0.addr):
            raise EINVAL("invalid sockaddr")
        saidx = secasindex.make(proto, mode, reqid, src0.addr, dst0.addr)
        with self.spi_alloc_lock:
            spi = self.key_do_getnewspi(ext.get(E.SPIRANGE), saidx)
            if spi == 0:
                raise key_error(_errno.EEXIST, "requested SPI or range is in use")
            sav = self.key_newsav(mhp, saidx, spi)
        if sav.seq != 0:
            self.key_acqdone(saidx, sav.seq)
        hdr = mhp.header()
        hdr[8:12] = (sav.seq & 0xFFFFFFFF).to_bytes(4, "little")
        src = mhp.raw(E.ADDRESS_SRC)
        dst = mhp.raw(E.ADDRESS_DST)
        return self.key_sendup_mbuf(so, _finish(hdr, SadbSa(spi).pack(), src, dst),
                                    KEY_SENDUP_ONE)

    # -- SADB_UPDATE --------------------------------------------------------------

    def key_update(self: "KeyEngine", so: Optional["KeySocket"], mhp: sadb_msghdr) -> int:
        """key_update: LARVAL -> MATURE with keys; MATURE/DYING: lifetimes,
        addresses or NAT-T; reply ALL without keys."""
        msg = mhp.msg
        ext = mhp.ext
        proto = key_satype2proto(msg.satype)
        if proto == 0:
            raise EINVAL("invalid SA type")
        if E.SA not in ext or E.ADDRESS_SRC not in ext or E.ADDRESS_DST not in ext or \
                (E.LIFETIME_HARD in ext) != (E.LIFETIME_SOFT in ext):
            raise EINVAL("UPDATE: missing required extension")
        sa2 = ext.get(E.X_SA2)
        mode, reqid = (sa2.mode, sa2.reqid) if sa2 is not None else (0, 0)
        sa0 = ext[E.SA]
        src0, dst0 = ext[E.ADDRESS_SRC], ext[E.ADDRESS_DST]
        # sadb_sa_state != MATURE is only logged (PFKEY_STRICT_CHECKS is off).
        err = key_checksockaddrs(src0.addr, dst0.addr)
        if err:
            raise key_error(err, "invalid sockaddr")
        saidx = secasindex.make(proto, mode, reqid, src0.addr, dst0.addr)
        with self.sahtree_lock:
            sav = self.savhash.get(sa0.spi)
            if sav is None:
                raise EINVAL(f"no SA with SPI {sa0.spi:#x}")
            if sav.pid != msg.pid:
                raise EINVAL("UPDATE from another process than the SA's creator")
            assert sav.sah is not None
            if not key_cmpsaidx(sav.sah.saidx, saidx, CMP_MODE_REQID):
                raise key_error(_errno.ESRCH, "SA index mismatch")
            if sav.state == LARVAL:
                if (msg.satype == SADB_SATYPE.ESP and E.KEY_ENCRYPT not in ext) or \
                        (msg.satype == SADB_SATYPE.AH and E.KEY_AUTH not in ext):
                    raise EINVAL("UPDATE of a LARVAL SA without its key")
                self.key_setsaval(sav, mhp)
                # key_setsaval reset `created`, so the SA becomes the newest:
                # move it to the head of the alive list.
                del sav.sah.savtree_larval[sav]
                sav.sah.savtree_alive[sav] = None
                self._sav_transition(sav, SAEvent.UPDATE)
            else:
                if E.KEY_ENCRYPT in ext or E.KEY_AUTH in ext:
                    raise EINVAL("keys of a MATURE/DYING SA cannot change")
                self.key_updatelifetimes(sav, mhp)
                if E.X_NEW_ADDRESS_SRC in ext or E.X_NEW_ADDRESS_DST in ext or \
                        E.X_NAT_T_TYPE in ext or sav.natt is not None:
                    return self.key_updateaddresses(so, mhp, sav, saidx)
                # DYING -> MATURE; `created` is unchanged, so no reordering.
                self._sav_transition(sav, SAEvent.UPDATE)
        # key_update offers the SA after dropping SAHTREE_WLOCK.
        self.hooks.ipsec_accel_sa_newkey(sav)
        return self.key_sendup_mbuf(so, key_getmsgbuf_x1(mhp), KEY_SENDUP_ALL)

    def key_updateaddresses(self: "KeyEngine", so: Optional["KeySocket"], mhp: sadb_msghdr,
                            sav: secasvar, saidx: secasindex) -> int:
        """key_updateaddresses (FreeBSD-ext, MOBIKE / NAT-T change): clone the
        SA under new addresses or NAT-T settings; the old one goes DEAD.

        As in the modelled snapshot the clone is not offered to
        ipsec_accel_sa_newkey (freebsd_ipsec_offload.md §17.21).
        """
        ext = mhp.ext
        nsrc = ext.get(E.X_NEW_ADDRESS_SRC)
        ndst = ext.get(E.X_NEW_ADDRESS_DST)
        assert sav.sah is not None
        if nsrc is not None:
            saidx = saidx._replace(src=nsrc.addr.with_port(0))
        if ndst is not None:
            saidx = saidx._replace(dst=ndst.addr.with_port(0))
        isnew = False
        if nsrc is not None or ndst is not None:
            err = key_checksockaddrs(saidx.src, saidx.dst)
            if err:
                raise key_error(err, "invalid new sockaddr")
            sah = self._find_sah(saidx)
            if sah is None:
                sah = secashead(saidx, saidx.addrkey)
                isnew = True
        else:
            if sav.sah.saidx.proto != IPPROTO_ESP or E.X_NAT_T_TYPE not in ext or \
                    E.X_NAT_T_SPORT not in ext or E.X_NAT_T_DPORT not in ext:
                raise EINVAL("NAT-T change needs an ESP SA and TYPE, SPORT and DPORT")
            sah = sav.sah
        # bcopy of the fields before `chain`; the offload fields start afresh.
        newsav = attrs.evolve(
            sav, sah=sah, natt=None, state=MATURE, refcnt=1, accel_ifps=[],
            accel_forget_tq=None, accel_flags=0, accel_lft_sw=[0, 0], accel_hw_allocs=0,
            accel_hw_octets=0, accel_firstused=0,
            accel_ifname=("" if sav.accel_ifname is not None
                          and "updateaddresses_ifname" in self.quirks
                          else sav.accel_ifname))
        newsav.state = sa_next_state(sav.state, SAEvent.CLONED)
        self.key_setnatt(newsav, mhp)
        if sav.state == DEAD:
            raise key_error(_errno.ESRCH, "SA was unlinked meanwhile")
        old_sah = sav.sah
        old_sah.savtree_alive.pop(sav, None)
        if self.savhash.get(sav.spi) is sav:
            del self.savhash[sav.spi]
        self._sav_transition(sav, SAEvent.CLONE)
        # Keep the alive list ordered by creation time, newest first.
        head_first = list(reversed(sah.savtree_alive))
        pos = len(head_first)
        for i, tmp in enumerate(head_first):
            if newsav.created > tmp.created:
                pos = i
                break
        head_first.insert(pos, newsav)
        sah.savtree_alive = dict.fromkeys(reversed(head_first))
        self.sad_genid += 1
        self.savhash[newsav.spi] = newsav
        if isnew:
            self._link_sah(sah)
        newsav.cntr = sav.cntr
        sav.flags |= SADB_X_EXT_CLONED
        return self.key_sendup_mbuf(so, key_getmsgbuf_x1(mhp), KEY_SENDUP_ALL)

    # -- SADB_ADD ----------------------------------------------------------------

    def key_add(self: "KeyEngine", so: Optional["KeySocket"], mhp: sadb_msghdr) -> int:
        """key_add: a MATURE SA straight away; reply ALL without keys."""
        msg = mhp.msg
        ext = mhp.ext
        satype = msg.satype
        proto = key_satype2proto(satype)
        if proto == 0:
            raise EINVAL("invalid SA type")
        if E.SA not in ext or E.ADDRESS_SRC not in ext or E.ADDRESS_DST not in ext or \
                (satype == _ST_ESP and E.KEY_ENCRYPT not in ext) or \
                (satype == _ST_AH and E.KEY_AUTH not in ext) or \
                (E.LIFETIME_HARD in ext) != (E.LIFETIME_SOFT in ext):
            raise EINVAL("ADD: missing required extension")
        sa2 = ext.get(E.X_SA2)
        mode, reqid = (sa2.mode, sa2.reqid) if sa2 is not None else (0, 0)
        sa0 = ext[E.SA]
        src0, dst0 = ext[E.ADDRESS_SRC], ext[E.ADDRESS_DST]
        err = key_checksockaddrs(src0.addr, dst0.addr)
        if err:
            raise key_error(err, "invalid sockaddr")
        saidx = secasindex.make(proto, mode, reqid, src0.addr, dst0.addr)
        spi = sa0.spi
        with self.spi_alloc_lock:
            if proto == IPPROTO_TCP:
                # TCP-MD5 SAs are unique per address pair; a clashing SPI is
                # silently replaced (the reply still echoes the request's).
                sav, spi = self.key_getsav_tcpmd5(saidx, spi)
                if sav is None and spi == 0:
                    raise key_error(_errno.EEXIST, "no SPI available")
            else:
                sav = self.savhash.get(spi)
            if sav is not None:
                raise key_error(_errno.EEXIST, f"an SA with SPI {spi:#x} exists")
            sav = self.key_newsav(mhp, saidx, spi)
        # key_add offers the SA a second time (key_newsav already did).
        self.hooks.ipsec_accel_sa_newkey(sav)
        if sav.seq != 0:
            self.key_acqdone(saidx, sav.seq)
        return self.key_sendup_mbuf(so, key_getmsgbuf_x1(mhp), KEY_SENDUP_ALL)

    def key_getsav_tcpmd5(self: "KeyEngine", saidx: secasindex,
                          spi: Optional[int]) -> tuple[Optional[secasvar], int]:
        """key_getsav_tcpmd5: the alive TCP-MD5 SA of an address pair, or
        (None, a usable SPI) -- 0 when none could be found."""
        with self.sahtree_lock:
            bucket = self.sahaddrhash.get(saidx.addrkey)
            if bucket:
                for sah in bucket:
                    if sah.saidx.proto == IPPROTO_TCP:
                        sav = self._alive_pick(sah)
                        if sav is not None:
                            return sav, spi or 0
                        break
            if spi is None:
                return None, 0
            if spi not in self.savhash:
                return None, spi
        return None, self.key_do_getnewspi(None, saidx)

    # -- SADB_DELETE ---------------------------------------------------------------

    def key_delete(self: "KeyEngine", so: Optional["KeySocket"], mhp: sadb_msghdr) -> int:
        """key_delete: one SA by SPI (LARVAL included), or delete-all without
        an SA extension.  Never an EXPIRE."""
        ext = mhp.ext
        proto = key_satype2proto(mhp.msg.satype)
        if proto == 0:
            raise EINVAL("invalid SA type")
        if E.ADDRESS_SRC not in ext or E.ADDRESS_DST not in ext:
            raise EINVAL("DELETE needs ADDRESS_SRC and ADDRESS_DST")
        src0, dst0 = ext[E.ADDRESS_SRC], ext[E.ADDRESS_DST]
        if key_checksockaddrs(src0.addr, dst0.addr):
            raise EINVAL("invalid sockaddr")
        saidx = secasindex.make(proto, IPSEC_MODE.ANY, 0, src0.addr, dst0.addr)
        if E.SA not in ext:
            return self.key_delete_all(so, mhp, saidx)
        sa0 = ext[E.SA]
        with self.spi_alloc_lock, self.sahtree_lock:
            if proto == IPPROTO_TCP:
                sav, _ = self.key_getsav_tcpmd5(saidx, None)
            else:
                sav = self.savhash.get(sa0.spi)
            if sav is None:
                raise key_error(_errno.ESRCH, f"no SA with SPI {sa0.spi:#x}")
            assert sav.sah is not None
            if not key_cmpsaidx(sav.sah.saidx, saidx, CMP_HEAD):
                raise key_error(_errno.ESRCH, "SA index mismatch")
            self.key_unlinksav(sav)
        return self.key_sendup_mbuf(
            so, key_gather_mbuf(mhp, E.SA, E.ADDRESS_SRC, E.ADDRESS_DST), KEY_SENDUP_ALL)

    def key_delete_all(self: "KeyEngine", so: Optional["KeySocket"], mhp: sadb_msghdr,
                       saidx: secasindex) -> int:
        """key_delete_all: every alive (not LARVAL) SA of proto + src + dst."""
        with self.sahtree_lock:
            drain: list[secasvar] = []
            for sah in self.sahaddrhash.get(saidx.addrkey, ()):
                if not key_cmpsaidx(sah.saidx, saidx, CMP_HEAD):
                    continue
                drain.extend(reversed(sah.savtree_alive))
                sah.savtree_alive.clear()
            for sav in drain:
                self._sav_transition(sav, SAEvent.DELETE_ALL)
                if self.savhash.get(sav.spi) is sav:
                    del self.savhash[sav.spi]
        return self.key_sendup_mbuf(
            so, key_gather_mbuf(mhp, E.ADDRESS_SRC, E.ADDRESS_DST), KEY_SENDUP_ALL)

    # -- SADB_GET -----------------------------------------------------------------

    def key_get(self: "KeyEngine", so: Optional["KeySocket"], mhp: sadb_msghdr) -> int:
        """key_get: one SA (keys included), reply ONE."""
        ext = mhp.ext
        proto = key_satype2proto(mhp.msg.satype)
        if proto == 0:
            raise EINVAL("invalid SA type")
        if E.SA not in ext or E.ADDRESS_SRC not in ext or E.ADDRESS_DST not in ext:
            raise EINVAL("GET needs SA, ADDRESS_SRC and ADDRESS_DST")
        src0, dst0 = ext[E.ADDRESS_SRC], ext[E.ADDRESS_DST]
        if key_checksockaddrs(src0.addr, dst0.addr):
            raise EINVAL("invalid sockaddr")
        saidx = secasindex.make(proto, IPSEC_MODE.ANY, 0, src0.addr, dst0.addr)
        sa0 = ext[E.SA]
        with self.sahtree_lock:
            if proto == IPPROTO_TCP:
                sav, _ = self.key_getsav_tcpmd5(saidx, None)
            else:
                sav = self.savhash.get(sa0.spi)
            if sav is None:
                raise key_error(_errno.ESRCH, "no SA found")
            assert sav.sah is not None
            if not key_cmpsaidx(sav.sah.saidx, saidx, CMP_HEAD):
                raise key_error(_errno.ESRCH, "SA index mismatch")
            satype = key_proto2satype(sav.sah.saidx.proto)
            # The lookup holds a reference while the reply is built.
            n = self.key_setdumpsa(sav, SADB.GET, satype, mhp.msg.seq, mhp.msg.pid, extra_ref=1)
        if n is None:
            raise key_error(_errno.ENOBUFS, "offload counters unavailable")
        return self.key_sendup_mbuf(so, n, KEY_SENDUP_ONE)

    # -- SADB_FLUSH ----------------------------------------------------------------

    def key_flush(self: "KeyEngine", so: Optional["KeySocket"], mhp: sadb_msghdr) -> int:
        """key_flush: every SA (of one protocol) DEAD at once, no EXPIRE."""
        proto = key_satype2proto(mhp.msg.satype)
        if proto == 0:
            raise EINVAL("invalid SA type")
        with self.sahtree_lock:
            if proto == IPSEC_PROTO_ANY:
                flushq = list(reversed(self.sahtree))
                self.sahtree.clear()
                self.sahaddrhash.clear()
                self.savhash.clear()
                for sah in flushq:
                    sah.state = DEAD
                    for sav in list(reversed(sah.savtree_larval)) + \
                            list(reversed(sah.savtree_alive)):
                        self._sav_transition(sav, SAEvent.FLUSH)
            else:
                flushq = [s for s in reversed(self.sahtree) if s.saidx.proto == proto]
                for sah in flushq:
                    self._unlink_sah(sah)
                    for sav in list(reversed(sah.savtree_larval)) + \
                            list(reversed(sah.savtree_alive)):
                        if self.savhash.get(sav.spi) is sav:
                            del self.savhash[sav.spi]
                        self._sav_transition(sav, SAEvent.FLUSH)
            for sah in flushq:                        # key_freesah_flushed
                sah.savtree_larval.clear()
                sah.savtree_alive.clear()
            self.sad_genid += 1
        return self.key_sendup_mbuf(so, key_gather_mbuf(mhp), KEY_SENDUP_ALL)

    # -- SADB_DUMP -----------------------------------------------------------------

    def key_dump(self: "KeyEngine", so: Optional["KeySocket"], mhp: sadb_msghdr) -> int:
        """key_dump: one message per SA, seq counting down to 0, ONE."""
        msg = mhp.msg
        proto = key_satype2proto(msg.satype)
        if proto == 0:
            raise EINVAL("invalid SA type")
        with self.sahtree_lock:
            sahs = [s for s in reversed(self.sahtree)
                    if msg.satype == SADB_SATYPE.UNSPEC or s.saidx.proto == proto]
            cnt = sum(len(s.savtree_larval) + len(s.savtree_alive) for s in sahs)
            if cnt == 0:
                raise key_error(_errno.ENOENT, "no SA to dump")
            for sah in sahs:
                satype = key_proto2satype(sah.saidx.proto)
                for sav in list(reversed(sah.savtree_larval)) + \
                        list(reversed(sah.savtree_alive)):
                    cnt -= 1
                    n = self.key_setdumpsa(sav, SADB.DUMP, satype, cnt, msg.pid)
                    if n is None:
                        raise key_error(_errno.ENOBUFS, "offload counters unavailable")
                    # A copy the sender's full buffer drops is lost silently:
                    # key_dump ignores key_sendup_mbuf's result.
                    self.key_sendup_mbuf(so, n, KEY_SENDUP_ONE)
        return 0

    def key_setdumpsa(self: "KeyEngine", sav: secasvar, mtype: int, satype: int, seq: int,
                      pid: int, extra_ref: int = 0) -> Optional[bytes]:
        """key_setdumpsa: the GET / DUMP format (§B.3), keys included."""
        sah = sav.sah
        assert sah is not None
        exts: list[Any] = [key_setsadbsa(sav), key_setsadbxsa2(sav)]
        rp = key_setsadbxsareplay(sav)
        if rp is not None:
            exts.append(rp)
        if sav.lft_h is not None:
            exts.append(key_setlifetime(sav.lft_h, E.LIFETIME_HARD))
        if sav.lft_s is not None:
            exts.append(key_setlifetime(sav.lft_s, E.LIFETIME_SOFT))
        exts.append(key_current_lifetime(sav))
        exts.append(key_setsadbaddr(E.ADDRESS_SRC, sah.saidx.src, 0xFF, 255))
        exts.append(key_setsadbaddr(E.ADDRESS_DST, sah.saidx.dst, 0xFF, 255))
        if sav.key_auth is not None:
            exts.append(key_setkey(sav.key_auth, E.KEY_AUTH))
        if sav.key_enc is not None:
            exts.append(key_setkey(sav.key_enc, E.KEY_ENCRYPT))
        natt = sav.natt
        if natt is not None:
            exts.append(SadbXNatTType(UDP_ENCAP_ESPINUDP))
            exts.append(SadbXNatTPort(E.X_NAT_T_SPORT, natt.sport))
            exts.append(SadbXNatTPort(E.X_NAT_T_DPORT, natt.dport))
            if natt.flags & IPSEC_NATT_F_OAI and natt.oai is not None:
                exts.append(key_setsadbaddr(E.X_NAT_T_OAI, natt.oai, 0xFF, 255))
            if natt.flags & IPSEC_NATT_F_OAR and natt.oar is not None:
                exts.append(key_setsadbaddr(E.X_NAT_T_OAR, natt.oar, 0xFF, 255))
        hooks = self.hooks
        if hooks.ipsec_accel_is_accel_sav(sav):
            lft = seclifetime()
            if hooks.ipsec_accel_sa_lifetime_op(sav, lft, None,
                                                IF_SA_CNT_WHICH.TOTAL_SW_VAL) != 0:
                return None
            exts.append(key_setlifetime(lft, E.X_LFT_CUR_SW_OFFL))
            exts.append(SadbLifetime(E.X_LFT_CUR_HW_OFFL, sav.accel_hw_allocs & 0xFFFFFFFF,
                                     sav.accel_hw_octets & 0xFFFFFFFFFFFFFFFF, 0, 0))
            exts.extend(hooks.ipsec_accel_key_setaccelif(sav))
        return key_setsadbmsg(mtype, satype, seq, pid, sav.refcnt + extra_ref, exts)


__all__ = ["KeySAMixin", "key_satype2proto", "key_proto2satype", "key_getmsgbuf_x1",
           "UINT32_80PCT"]
