"""The once-a-second work of FreeBSD's ``key_timehandler`` (key.c).

``key_timehandler(now)`` runs key_flush_spd, key_flush_sad, key_flush_acq and
key_flush_spacq for one kernel, on an injected clock (nothing here reads the
wall clock or starts a thread; the caller -- a test, ``ipsec_accel.host`` or
the daemon -- decides when a second has passed).

Reference pfkey_setkey_reference.md §B.3-§B.5:

* LARVAL SAs ``larval_lifetime`` (30 s) after ``created`` die silently;
* only SAs with lifetimes are checked; HARD wins over SOFT; SOFT is checked
  only for MATURE SAs; addtime counts from ``created``, usetime from
  ``firstused`` (only once used), bytes against the CURRENT counter; the
  allocations limit is never enforced; without ESN a replay counter or last
  sequence above 80 % of 2^32 is a soft expiry;
* soft -> DYING + SADB_EXPIRE(SOFT); hard -> DEAD + SADB_EXPIRE(HARD), both
  REGISTERED, sent after the SAD lock is released; SAHs left empty by an
  earlier tick are unlinked;
* a global SP past ``lifetime`` (since created) or ``validtime`` (since last
  used) is removed and announced with SADB_X_SPDEXPIRE;
* ACQ entries older than ``blockacq_lifetime`` are purged.

Messages of one kind go out in the order key.c sends them: its drain lists
are built with LIST_INSERT_HEAD, so the last SA found is announced first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from .ipsec import IPSEC_DIR
from .key_msg import (
    E,
    key_current_lifetime, key_setlifetime, key_setsadbaddr, key_setsadbmsg, key_setsadbsa,
    key_setsadbxsa2, key_setsadbxsareplay,
)
from .key_sa import UINT32_80PCT, key_proto2satype
from .keydb import (
    IPSEC_SPSTATE_ALIVE, MATURE, SAEvent, SPEvent, secashead, secasvar, secpolicy,
    sp_next_state,
)
from .keysock import KEY_SENDUP_REGISTERED
from .pfkeyv2 import SADB, SADB_SAFLAGS

if TYPE_CHECKING:  # pragma: no cover
    from .key_iface import KeyEngine

_U64 = 0xFFFFFFFFFFFFFFFF


class KeyTimerMixin:
    """key_timehandler and its flush passes; mixed into ``pfkey.key.Key``."""

    def key_timehandler(self: "KeyEngine", now: Optional[int] = None) -> None:
        """One tick of key.c's callout (``now`` defaults to the kernel clock)."""
        if now is None:
            now = self.clock.now()
        self.key_flush_spd(now)
        self.key_flush_sad(now)
        self.key_flush_acq(now)
        self.key_flush_spacq(now)

    # -- SPD ------------------------------------------------------------------

    def key_flush_spd(self: "KeyEngine", now: int) -> None:
        removed: list[secpolicy] = []
        with self.sptree_lock:
            drain: list[secpolicy] = []
            for d in range(IPSEC_DIR.MAX):
                for sp in self.sptree[d]:
                    if sp.lifetime == 0 and sp.validtime == 0:
                        continue
                    if (sp.lifetime and now - sp.created > sp.lifetime) or \
                            (sp.validtime and now - sp.lastused > sp.validtime):
                        drain.append(sp)
            if not drain:
                return
            drain.reverse()                          # LIST_INSERT_HEAD order
            for sp in drain:
                if sp.state != IPSEC_SPSTATE_ALIVE:
                    continue
                self.sptree[sp.spidx.dir].remove(sp)
                if self.sphash.get(sp.id) is sp:
                    del self.sphash[sp.id]
                sp.state = sp_next_state(sp.state, SPEvent.EXPIRE)
                self.hooks.ipsec_accel_spddel(sp)
                removed.append(sp)
            self.sp_genid += 1
        for sp in removed:
            self.key_spdexpire(sp)

    # -- SAD ------------------------------------------------------------------

    def key_flush_sad(self: "KeyEngine", now: int) -> None:
        with self.sahtree_lock:
            emptyq: list[secashead] = []
            drainq: list[secasvar] = []
            hexpireq: list[secasvar] = []
            sexpireq: list[secasvar] = []
            larval_lifetime = self.larval_lifetime
            for sah in reversed(self.sahtree):
                if not sah.savtree_larval and not sah.savtree_alive:
                    emptyq.append(sah)
                    continue
                for sav in reversed(sah.savtree_larval):
                    # key.c subtracts from an unsigned `created`.
                    if (now - sav.created) & _U64 < larval_lifetime:
                        continue
                    drainq.append(sav)
                for sav in reversed(sah.savtree_alive):
                    h = sav.lft_h
                    if h is None:
                        continue
                    age = (now - sav.created) & _U64
                    used = (now - sav.firstused) & _U64
                    if (h.addtime and age > h.addtime) or \
                            (h.usetime and sav.firstused and used > h.usetime) or \
                            (h.bytes and sav.lft_c_bytes > h.bytes):
                        hexpireq.append(sav)
                        continue
                    s = sav.lft_s
                    if sav.state != MATURE or s is None:
                        continue
                    r = sav.replay
                    if (s.addtime and age > s.addtime) or \
                            (s.usetime and sav.firstused and used > s.usetime) or \
                            (s.bytes and sav.lft_c_bytes > s.bytes) or \
                            (not sav.flags & SADB_SAFLAGS.X_SAFLAGS_ESN and r is not None
                             and (r.count > UINT32_80PCT or r.last > UINT32_80PCT)):
                        sexpireq.append(sav)
            if not (emptyq or drainq or hexpireq or sexpireq):
                return
            for q in (emptyq, drainq, hexpireq, sexpireq):
                q.reverse()                          # LIST_INSERT_HEAD order
            for sav in drainq:
                sav.sah.savtree_larval.pop(sav, None)  # type: ignore[union-attr]
                if self.savhash.get(sav.spi) is sav:
                    del self.savhash[sav.spi]
                self._sav_transition(sav, SAEvent.LARVAL_EXPIRE)
            for sav in hexpireq:
                sav.sah.savtree_alive.pop(sav, None)   # type: ignore[union-attr]
                if self.savhash.get(sav.spi) is sav:
                    del self.savhash[sav.spi]
                self._sav_transition(sav, SAEvent.HARD_EXPIRE)
            for sav in sexpireq:
                # DYING keeps its place in the alive list.
                self._sav_transition(sav, SAEvent.SOFT_EXPIRE)
            for sah in emptyq:
                if sah.state == MATURE and not sah.savtree_larval and not sah.savtree_alive:
                    self._unlink_sah(sah)
        for sav in hexpireq:
            self.key_expire(sav, True)
        for sav in sexpireq:
            self.key_expire(sav, False)

    def key_expire(self: "KeyEngine", sav: secasvar, hard: bool) -> int:
        """key_expire: SADB_EXPIRE (HARD or SOFT) to registered sockets; no
        keys, no NAT-T; reserved = refcount (the timer holds one more)."""
        sah = sav.sah
        assert sah is not None
        exts: list[Any] = [key_setsadbsa(sav), key_setsadbxsa2(sav)]
        rp = key_setsadbxsareplay(sav)
        if rp is not None:
            exts.append(rp)
        exts.append(key_current_lifetime(sav))
        if hard:
            exts.append(key_setlifetime(sav.lft_h, E.LIFETIME_HARD))  # type: ignore[arg-type]
        else:
            exts.append(key_setlifetime(sav.lft_s, E.LIFETIME_SOFT))  # type: ignore[arg-type]
        exts.append(key_setsadbaddr(E.ADDRESS_SRC, sah.saidx.src, 0xFF, 255))
        exts.append(key_setsadbaddr(E.ADDRESS_DST, sah.saidx.dst, 0xFF, 255))
        data = key_setsadbmsg(SADB.EXPIRE, key_proto2satype(sah.saidx.proto), sav.seq, 0,
                              sav.refcnt + 1, exts)
        return self.key_sendup_mbuf(None, data, KEY_SENDUP_REGISTERED)

    # -- ACQ ------------------------------------------------------------------

    def key_flush_acq(self: "KeyEngine", now: int) -> None:
        with self.acq_lock:
            for acq in list(self.acqtree):
                if now - acq.created > self.blockacq_lifetime:
                    self._acq_unlink(acq)

    def key_flush_spacq(self: "KeyEngine", now: int) -> None:
        with self.spacq_lock:
            self.spacqtree[:] = [a for a in self.spacqtree
                                 if not now - a.created > self.blockacq_lifetime]


__all__ = ["KeyTimerMixin"]
