"""SA creation and validation of FreeBSD's ``sys/netipsec/key.c``.

key_newsav (GETSPI / ADD), key_setsaval with key_setident, key_setnatt and
key_updatelifetimes, key_cleansav, and the SPI choice key_do_getnewspi --
the parts of the SAD shared by several handlers (``pfkey.key_sa``).  Every
refusal raises a ``PfkeyError`` carrying FreeBSD's errno (EINVAL unless
noted); reference pfkey_setkey_reference.md §B.2 (GETSPI, ``key_setsaval``,
NAT-T).  Callers hold the locks key.c holds (spi_alloc around SPI choice and
linking; key_newsav takes sahtree itself).
"""

from __future__ import annotations

import errno as _errno
from typing import TYPE_CHECKING, Any

from .errors import PfkeyError
from .ipsec import IPPROTO_ESP, IPSEC_MODE
from .key_msg import E, EINVAL, key_error, sadb_msghdr
from .key_xform import xform_init
from .keydb import (
    IPSEC_NATT_F_OAI, IPSEC_NATT_F_OAR, MATURE, SAEvent, sa_bytes, sa_next_state,
    secashead, secasindex, secasvar, seckey, seclifetime, secnatt, secreplay,
)
from .pfkeyv2 import (
    AF_INET, AF_INET6, SADB, SADB_AALG, SADB_EALG, SADB_KEY_FLAGS_MAX, SADB_SAFLAGS,
    SADB_SATYPE, SADB_X_EXT_CLONED, UDP_ENCAP_ESPINUDP,
)

if TYPE_CHECKING:  # pragma: no cover
    from .key_iface import KeyEngine

# sadb_sa_flags and SA types as plain ints (IntFlag arithmetic is slow).
_F_OLD = int(SADB_SAFLAGS.X_EXT_OLD)
_F_DERIV = int(SADB_SAFLAGS.X_EXT_DERIV)
_F_RAWCPI = int(SADB_SAFLAGS.X_EXT_RAWCPI)
_F_OLD_DERIV = _F_OLD | _F_DERIV
_ST_AH = int(SADB_SATYPE.AH)
_ST_ESP = int(SADB_SATYPE.ESP)
_ST_IPCOMP = int(SADB_SATYPE.X_IPCOMP)
_ST_TCP = int(SADB_SATYPE.X_TCPSIGNATURE)
_AALG_NULL = int(SADB_AALG.X_NULL)
_EALG_NULL = int(SADB_EALG.NULL)


def in_addword(a: int, b: int) -> int:
    """machine/in_cksum.h in_addword: one's-complement add of two u16."""
    s = (a & 0xFFFF) + (b & 0xFFFF)
    return s - 0xFFFF if s > 0xFFFF else s


class KeySAValMixin:
    """SA construction helpers; mixed into ``pfkey.key.Key``."""

    def key_cleansav(self: "KeyEngine", sav: secasvar) -> None:
        """key_cleansav: drop what key_setsaval allocated (a cloned SA keeps
        the parts it shares with its clone)."""
        sav.natt = None
        if sav.flags & SADB_X_EXT_CLONED:
            return
        sav.tdb_xform = None
        sav.key_auth = None
        sav.key_enc = None
        sav.replay = None
        sav.lft_h = None
        sav.lft_s = None

    # -- SPI allocation ---------------------------------------------------------

    def key_do_getnewspi(self: "KeyEngine", spirange: Any, saidx: secasindex) -> int:
        """key_do_getnewspi: 0 on failure, else the SPI (caller holds spi_alloc)."""
        if spirange is not None:
            lo, hi = spirange.min, spirange.max
        else:
            lo, hi = self.spi_minval & 0xFFFFFFFF, self.spi_maxval & 0xFFFFFFFF
        if saidx.proto == 108:       # IPComp needs a 2-byte CPI
            lo = min(lo, 0xFFFF)
            hi = min(hi, 0xFFFF)
            if lo > hi:
                lo, hi = hi, lo
        if lo == hi:
            return 0 if lo in self.savhash else lo
        # u32 arithmetic as in C: a reversed range wraps.  A modulus of 2^32
        # (0..0xffffffff) would divide by zero in the kernel; model it as
        # the full range instead of crashing.
        span = (hi - lo + 1) & 0xFFFFFFFF or (1 << 32)
        newspi = 0
        limit = self.spi_trycnt
        tries = 0
        rnd = self.rng.getrandbits
        while tries < limit:
            newspi = (lo + rnd(64) % span) & 0xFFFFFFFF
            if newspi not in self.savhash:
                break
            tries += 1
        if tries == limit or newspi == 0:
            return 0
        return newspi

    # -- SA creation / validation ----------------------------------------------

    def key_newsav(self: "KeyEngine", mhp: sadb_msghdr, saidx: secasindex, spi: int) -> secasvar:
        """key_newsav: a LARVAL SA (GETSPI) or a validated MATURE one (ADD),
        linked into its (possibly new) SAH and the SPI hash."""
        if saidx.proto in (50, 51) and spi <= 255:
            # RFC 4302 2.4: SPIs 1-255 are reserved, 0 is local use.
            raise EINVAL(f"SPI {spi} is in the reserved range 0..255")
        msg = mhp.msg
        sav = secasvar(spi=spi, seq=msg.seq, pid=msg.pid)
        xof = mhp.ext.get(E.X_IF_HW_OFFL)
        if xof is not None:
            sav.accel_ifname = xof.ifname
            sav.accel_ifflags = xof.flags
        with self.sahtree_lock:
            sah = self._find_sah(saidx)
            isnew = sah is None
            if sah is None:
                sah = secashead(saidx, saidx.addrkey)
            sav.sah = sah
            if msg.type == SADB.GETSPI:
                sav.created = self.clock.now()
            else:
                self.key_setsaval(sav, mhp)
                sav.state = sa_next_state(sav.state, SAEvent.ADD)
            if isnew:
                self._link_sah(sah)
            if sav.state == MATURE:
                sah.savtree_alive[sav] = None
                self.sad_genid += 1
                self.hooks.ipsec_accel_sa_newkey(sav)
            else:
                sah.savtree_larval[sav] = None
            self.savhash[spi] = sav
        return sav

    def key_setsaval(self: "KeyEngine", sav: secasvar, mhp: sadb_msghdr) -> None:
        """key_setsaval: every value of a LARVAL SA from ADD / UPDATE."""
        try:
            self._key_setsaval(sav, mhp)
        except PfkeyError:
            self.key_cleansav(sav)
            raise

    def _key_setsaval(self: "KeyEngine", sav: secasvar, mhp: sadb_msghdr) -> None:
        ext = mhp.ext
        satype = mhp.msg.satype
        # key_setident: both or neither; types must agree; never stored.
        ids, idd = ext.get(E.IDENTITY_SRC), ext.get(E.IDENTITY_DST)
        if (ids is None) != (idd is None):
            raise EINVAL("only one of IDENTITY_SRC / IDENTITY_DST")
        # idd is not None when ids is not: "only one" was refused just above
        # (a correlation mypy does not follow).
        if ids is not None and ids.type != idd.type:  # type: ignore[union-attr]
            raise EINVAL("identity types differ")
        sah = sav.sah
        assert sah is not None
        sah.idents = sah.identd = None

        sa0 = ext.get(E.SA)
        if sa0 is not None:
            # Written before validation: a failed UPDATE leaves them on the
            # LARVAL SA, as in key.c.
            sav.alg_auth = sa0.auth
            sav.alg_enc = sa0.encrypt
            sav.flags = sa0.flags
            if sa0.flags & ~SADB_KEY_FLAGS_MAX:
                raise EINVAL(f"invalid sa_flags {sa0.flags:#x}")
            replay = 0 if sa0.flags & _F_OLD else sa0.replay
            rp = ext.get(E.X_SA_REPLAY)
            if rp is not None:
                if rp.replay > 0xFFFFFFFF - 32:
                    raise EINVAL("replay window too big")
                replay = (rp.replay + 7) >> 3
            sav.replay = secreplay()
            if replay:
                # RFC 6479: a power-of-two bitmap plus one redundant 32-bit block.
                size = 1
                while replay + 4 > size:
                    size <<= 1
                sav.replay.bitmap_size = size // 4
                sav.replay.wsize = replay

        ka = ext.get(E.KEY_AUTH)
        if ka is not None:
            if satype == _ST_ESP or satype == _ST_AH or satype == _ST_TCP:
                if mhp.extlen[E.KEY_AUTH] == 8 and sav.alg_auth != _AALG_NULL:
                    raise EINVAL("empty KEY_AUTH")
            else:
                raise EINVAL(f"KEY_AUTH not allowed for SA type {satype}")
            sav.key_auth = seckey(ka.bits, ka.key)
        ke = ext.get(E.KEY_ENCRYPT)
        if ke is not None:
            if satype == _ST_ESP:
                if mhp.extlen[E.KEY_ENCRYPT] == 8 and sav.alg_enc != _EALG_NULL:
                    raise EINVAL("empty KEY_ENCRYPT")
                sav.key_enc = seckey(ke.bits, ke.key)
            elif satype == _ST_IPCOMP:
                if mhp.extlen[E.KEY_ENCRYPT] != 8:
                    raise EINVAL("IPComp takes no key material")
                sav.key_enc = None
            else:
                raise EINVAL(f"KEY_ENCRYPT not allowed for SA type {satype}")

        sav.ivlen = 0
        if satype == _ST_ESP:
            if (sav.flags & _F_OLD_DERIV) == _F_OLD_DERIV:
                raise EINVAL("DERIV flag on an old-style ESP SA")
        elif satype == _ST_AH:
            if sav.flags & _F_DERIV:
                raise EINVAL("DERIV flag on an AH SA")
            if sav.alg_enc != 0:
                raise EINVAL("AH SA with an encryption algorithm")
        elif satype == _ST_IPCOMP:
            if sav.alg_auth != 0:
                raise EINVAL("IPComp SA with an auth algorithm")
            if not sav.flags & _F_RAWCPI and sav.spi >= 0x10000:
                raise EINVAL(f"IPComp CPI {sav.spi:#x} does not fit 16 bits")
        elif satype == _ST_TCP:
            if sav.alg_enc != 0:
                raise EINVAL("TCP-MD5 SA with an encryption algorithm")
        else:
            raise key_error(_errno.EPROTONOSUPPORT, f"invalid SA type {satype}")
        if xform_init(sav, satype):
            raise EINVAL("transform refused the algorithms or keys")

        self.key_setnatt(sav, mhp)
        sav.firstused = 0
        sav.created = self.clock.now()
        self.key_updatelifetimes(sav, mhp)

    def key_setnatt(self: "KeyEngine", sav: secasvar, mhp: sadb_msghdr) -> None:
        """key_setnatt: ESP only, and only with TYPE, SPORT and DPORT together."""
        sah = sav.sah
        assert sah is not None
        if sah.saidx.proto != IPPROTO_ESP:
            return
        ext = mhp.ext
        t = ext.get(E.X_NAT_T_TYPE)
        sp = ext.get(E.X_NAT_T_SPORT)
        dp = ext.get(E.X_NAT_T_DPORT)
        if t is None or sp is None or dp is None:
            return
        if t.type != UDP_ENCAP_ESPINUDP:
            raise EINVAL(f"unsupported NAT-T type {t.type}")
        natt = sav.natt = secnatt()
        if sp.port == 0:
            raise EINVAL("NAT-T sport 0")
        natt.sport = sp.port
        if dp.port == 0:
            raise EINVAL("NAT-T dport 0")
        natt.dport = dp.port
        oai = ext.get(E.X_NAT_T_OAI)
        oar = ext.get(E.X_NAT_T_OAR)
        if sah.saidx.mode == IPSEC_MODE.TUNNEL:
            return
        cksum = 0
        for oa, ours, flag, attr in ((oai, sah.saidx.src, IPSEC_NATT_F_OAI, "oai"),
                                     (oar, sah.saidx.dst, IPSEC_NATT_F_OAR, "oar")):
            if oa is None:
                continue
            sa = oa.addr
            mine = sa_bytes(ours).ljust(28, b"\0")
            theirs = sa_bytes(sa).ljust(28, b"\0")
            if sa.family == AF_INET:
                if sa.sa_len != 16:
                    raise EINVAL("bad NAT-OA sockaddr_in")
                if theirs[4:8] != mine[4:8]:
                    setattr(natt, attr, sa)
                    natt.flags |= flag
                    old = int.from_bytes(mine[4:8], "little")
                    new = int.from_bytes(theirs[4:8], "little")
                    cksum = in_addword(cksum, (~old & 0xFFFFFFFF) >> 16)
                    cksum = in_addword(cksum, ~old & 0xFFFF)
                    cksum = in_addword(cksum, new >> 16)
                    cksum = in_addword(cksum, new & 0xFFFF)
            elif sa.family == AF_INET6:
                if sa.sa_len != 28:
                    raise EINVAL("bad NAT-OA sockaddr_in6")
                if theirs[8:24] != mine[8:24]:
                    setattr(natt, attr, sa)
                    natt.flags |= flag
                    for i in range(8):
                        o = int.from_bytes(mine[8 + 2 * i:10 + 2 * i], "little")
                        n = int.from_bytes(theirs[8 + 2 * i:10 + 2 * i], "little")
                        cksum = in_addword(cksum, ~o & 0xFFFF)
                        cksum = in_addword(cksum, n)
            else:
                raise EINVAL(f"NAT-OA of family {sa.family}")
        natt.cksum = cksum

    def key_updatelifetimes(self: "KeyEngine", sav: secasvar, mhp: sadb_msghdr) -> None:
        """key_updatelifetimes: HARD and SOFT come as a pair; UPDATE without
        them clears a MATURE SA's lifetimes and leaves a DYING one alone."""
        h = mhp.ext.get(E.LIFETIME_HARD)
        s = mhp.ext.get(E.LIFETIME_SOFT)
        if h is None and s is None:
            if sav.state == MATURE:
                sav.lft_h = sav.lft_s = None
            return
        if h is None or s is None:
            raise EINVAL("LIFETIME_HARD and LIFETIME_SOFT must come together")
        sav.lft_h = seclifetime(h.allocations, h.bytes, h.addtime, h.usetime)
        sav.lft_s = seclifetime(s.allocations, s.bytes, s.addtime, s.usetime)


__all__ = ["KeySAValMixin", "in_addword"]
