"""SADB_ACQUIRE and SADB_REGISTER of FreeBSD's ``sys/netipsec/key.c``.

key_acquire (kernel-originated ACQUIRE with blocking and retransmission),
key_getacq / key_newacq / key_acqdone / key_acqreset, key_spdacquire,
key_acquire2 (ACQUIRE sent by userland), key_register and key_freereg, and
the packet-side key_allocsa_policy that triggers ACQUIREs.

Blocking (reference pfkey_setkey_reference.md §B.4): entries are keyed by the
exact SA index; the first trigger sends with seq = ++acq_seq; later triggers
only count, and once the count exceeds ``net.key.blockacq_count`` the message
is sent again *with the same seq* and the count restarts.  Entries die
``net.key.blockacq_lifetime`` seconds after ``created``; ADD, or GETSPI with
the ACQUIRE's seq, zeroes ``created`` so the next timer tick removes them.
Locks: ``acq_lock`` (acqtree), ``spacq_lock``, ``regtree_lock``.
"""

from __future__ import annotations

import errno as _errno
from typing import TYPE_CHECKING, Any, Optional

from .extensions import SadbProp, SadbSupported, SadbXPolicy, SadbXSa2
from .ipsec import IPPROTO_TCP, IPPROTO_UDP, IPSEC_ULPROTO_ANY
from .key_msg import E, EINVAL, key_error, key_setsadbaddr, key_setsadbmsg, sadb_msghdr
from .key_sa import key_proto2satype, key_satype2proto
from .key_xform import key_getprop_combs, supported_auth, supported_encrypt
from .keydb import (
    CMP_EXACTLY, CMP_MODE_REQID, key_checksockaddrs, key_cmpsaidx, secacq, secasindex,
    secasvar, secpolicy, secspacq,
)
from .keysock import KEY_SENDUP_REGISTERED
from .pfkeyv2 import AF_INET, AF_INET6, SADB

if TYPE_CHECKING:  # pragma: no cover
    from .key_iface import KeyEngine
    from .keysock import KeySocket


#: key_register's reply body: SUPPORTED_AUTH then SUPPORTED_ENCRYPT.
REGISTER_BODY = (SadbSupported(E.SUPPORTED_AUTH, supported_auth()).pack()
                 + SadbSupported(E.SUPPORTED_ENCRYPT, supported_encrypt()).pack())


class KeyAcquireMixin:
    """ACQUIRE / REGISTER handling; mixed into ``pfkey.key.Key``."""

    # -- ACQ entries ---------------------------------------------------------

    def key_newacq(self: "KeyEngine", saidx: secasindex) -> int:
        """key_newacq: a fresh entry; seq = ++acq_seq.

        key.c hands out 1 once acq_seq reaches ~0 but never resets the
        counter, so every later entry gets seq 1 too; reproduced as is.
        """
        now = self.clock.now()
        with self.acq_lock:
            if self.acq_seq == 0xFFFFFFFF:
                seq = 1
            else:
                self.acq_seq += 1
                seq = self.acq_seq
            acq = secacq(saidx, seq, now, 0)
            self.acqtree[acq] = None
            self.acqaddrhash.setdefault(saidx.addrkey, []).insert(0, acq)
            self.acqseqhash.setdefault(seq, []).insert(0, acq)
        return seq

    def key_getacq(self: "KeyEngine", saidx: secasindex) -> int:
        """key_getacq: the seq to send now, or 0 while blocked."""
        with self.acq_lock:
            for acq in self.acqaddrhash.get(saidx.addrkey, ()):
                if key_cmpsaidx(acq.saidx, saidx, CMP_EXACTLY):
                    if acq.count > self.blockacq_count:
                        acq.created = self.clock.now()
                        acq.count = 0
                        return acq.seq
                    acq.count += 1
                    return 0
        return self.key_newacq(saidx)

    def _acq_unlink(self: "KeyEngine", acq: secacq) -> None:
        self.acqtree.pop(acq, None)
        key: Any  # an addrkey tuple or a seq int, as the paired index takes
        for index, key in ((self.acqaddrhash, acq.saidx.addrkey), (self.acqseqhash, acq.seq)):
            bucket = index.get(key)
            if bucket is not None:
                try:
                    bucket.remove(acq)
                except ValueError:
                    pass
                if not bucket:
                    del index[key]

    def _acq_byseq(self: "KeyEngine", seq: int) -> Optional[secacq]:
        bucket = self.acqseqhash.get(seq)
        return bucket[0] if bucket else None

    def key_acqreset(self: "KeyEngine", seq: int) -> int:
        """key_acqreset: IKE reported an error; let the next trigger resend."""
        with self.acq_lock:
            acq = self._acq_byseq(seq)
            if acq is None:
                return _errno.ESRCH
            acq.count = 0
            acq.created = self.clock.now()
        return 0

    def key_acqdone(self: "KeyEngine", saidx: secasindex, seq: int) -> int:
        """key_acqdone: GETSPI / ADD answered ACQUIRE ``seq``; purge soon."""
        with self.acq_lock:
            acq = self._acq_byseq(seq)
            if acq is None or not key_cmpsaidx(acq.saidx, saidx, CMP_EXACTLY):
                return _errno.ESRCH
            acq.created = 0
        return 0

    # -- kernel-originated messages -----------------------------------------------

    def key_acquire(self: "KeyEngine", saidx: secasindex, sp: Optional[secpolicy]) -> int:
        """key_acquire: send (or count) an SADB_ACQUIRE for ``saidx``."""
        satype = key_proto2satype(saidx.proto)
        seq = self.key_getacq(saidx)
        if seq == 0:
            return 0
        ul_proto = IPSEC_ULPROTO_ANY
        if sp is not None and sp.spidx.ul_proto in (IPPROTO_TCP, IPPROTO_UDP):
            ul_proto = sp.spidx.ul_proto
        addrs = []
        for exttype, addr, side, pref in (
                (E.ADDRESS_SRC, saidx.src, "src", "prefs"),
                (E.ADDRESS_DST, saidx.dst, "dst", "prefd")):
            mask = 0xFF
            if ul_proto != IPSEC_ULPROTO_ANY:
                assert sp is not None
                psa = getattr(sp.spidx, side)
                if psa.family in (AF_INET, AF_INET6) and psa.port != 0:
                    addr = addr.with_port(psa.port)
                    mask = getattr(sp.spidx, pref)
            addrs.append(key_setsadbaddr(exttype, addr, mask, ul_proto))
        exts: list[Any] = addrs
        if sp is not None:
            exts.append(SadbXPolicy(sp.policy, sp.spidx.dir, sp.id & 0xFFFFFFFF,
                                    sp.priority & 0xFFFFFFFF))
        if saidx.reqid != 0:
            exts.append(SadbXSa2(saidx.mode, saidx.reqid & 0xFFFFFFFF, 0))
        combs = key_getprop_combs(saidx.proto, self.esp_keymin, self.esp_auth,
                                  self.ah_keymin)
        if combs is not None:
            exts.append(SadbProp(tuple(combs), 32))
        return self.key_sendup_mbuf(None, key_setsadbmsg(SADB.ACQUIRE, satype, seq, 0, 0, exts),
                                    KEY_SENDUP_REGISTERED)

    def key_spdacquire(self: "KeyEngine", sp: secpolicy) -> int:
        """key_spdacquire: header-only SADB_X_SPDACQUIRE with its own blocking."""
        from .spd import key_cmpspidx_exactly
        now = self.clock.now()
        with self.spacq_lock:
            for acq in self.spacqtree:
                if key_cmpspidx_exactly(sp.spidx, acq.spidx):
                    if self.blockacq_count < acq.count:
                        acq.count = 0
                        break
                    acq.count += 1
                    return 0
            else:
                self.spacqtree.insert(0, secspacq(sp.spidx, now, 0))
        return self.key_sendup_mbuf(None, key_setsadbmsg(SADB.X_SPDACQUIRE, 0, 0, 0, 0, []),
                                    KEY_SENDUP_REGISTERED)

    # -- SADB_ACQUIRE from userland ---------------------------------------------------

    def key_acquire2(self: "KeyEngine", so: Optional["KeySocket"], mhp: sadb_msghdr) -> int:
        """key_acquire2: an IKE error report (header only) or a request to
        generate an ACQUIRE.  Never a direct reply."""
        msg = mhp.msg
        if len(mhp.buf) == 16:
            if msg.seq != 0 and msg.errno != 0:
                self.key_acqreset(msg.seq)
            return 0
        proto = key_satype2proto(msg.satype)
        if proto == 0:
            raise EINVAL("invalid SA type")
        ext = mhp.ext
        if E.ADDRESS_SRC not in ext or E.ADDRESS_DST not in ext or E.PROPOSAL not in ext:
            raise EINVAL("ACQUIRE needs ADDRESS_SRC, ADDRESS_DST and PROPOSAL")
        sa2 = ext.get(E.X_SA2)
        mode, reqid = (sa2.mode, sa2.reqid) if sa2 is not None else (0, 0)
        src0, dst0 = ext[E.ADDRESS_SRC], ext[E.ADDRESS_DST]
        if key_checksockaddrs(src0.addr, dst0.addr):
            raise EINVAL("invalid sockaddr")
        saidx = secasindex.make(proto, mode, reqid, src0.addr, dst0.addr)
        with self.sahtree_lock:
            if self._find_sah(saidx, CMP_MODE_REQID) is not None:
                raise key_error(_errno.EEXIST, "an SA head exists for this index")
        err = self.key_acquire(saidx, None)
        if err:
            raise key_error(err, "ACQUIRE could not be sent")
        return 0

    # -- SADB_REGISTER ------------------------------------------------------------

    def key_register(self: "KeyEngine", so: Optional["KeySocket"], mhp: sadb_msghdr) -> int:
        """key_register: register ``so`` for an SA type (UNSPEC: only list the
        algorithms); reply REGISTERED (the sender always gets it)."""
        satype = mhp.msg.satype
        if satype >= len(self.regtree) or so is None:
            raise EINVAL("invalid register message")
        if satype != 0:
            with self.regtree_lock:
                if so in self.regtree[satype]:
                    raise key_error(_errno.EEXIST, "socket already registered for this type")
                self.regtree[satype].insert(0, so)
                so.kp_registered += 1
        hdr = mhp.header()
        out = bytes(hdr) + REGISTER_BODY
        n = len(out) >> 3
        out = out[:4] + bytes((n & 0xFF, n >> 8)) + out[6:]
        return self.key_sendup_mbuf(so, out, KEY_SENDUP_REGISTERED)

    def key_freereg(self: "KeyEngine", so: "KeySocket") -> None:
        """key_freereg: drop every registration of a closing socket."""
        with self.regtree_lock:
            for reglist in self.regtree:
                if so in reglist:
                    reglist.remove(so)

    # -- packet side --------------------------------------------------------------

    def key_allocsa_policy(self: "KeyEngine", sp: Optional[secpolicy],
                           saidx: secasindex) -> tuple[Optional[secasvar], int]:
        """key_allocsa_policy: the SA an outbound request uses -- the oldest
        alive (MATURE or DYING) SA with preferred_oldsa, else the newest --
        or (None, key_acquire's error) after triggering an ACQUIRE."""
        with self.sahtree_lock:
            sah = self._find_sah(saidx, CMP_MODE_REQID)
            sav = self._alive_pick(sah) if sah is not None else None
        if sav is not None:
            return sav, 0
        return None, self.key_acquire(saidx, sp)


__all__ = ["KeyAcquireMixin", "REGISTER_BODY"]
