"""SPD message handlers of FreeBSD's ``sys/netipsec/key.c``.

key_spdadd (SPDADD, SPDUPDATE, SPDSETIDX), key_spddelete, key_spddelete2,
key_spdget, key_spddump, key_spdflush, plus key_msg2sp, key_newreqid,
key_getnewspid, key_insertsp, key_detach, key_unlink, key_sp2msg,
key_setdumpsp, key_spdexpire, key_register_ifnet / key_unregister_ifnet (the
if_ipsec(4) VTI policies) and the packet-side key_allocsp.

The policy lists and their index are ``pfkey.spd.SPDTree`` (one per
direction for global policies, one per direction for ifnet policies);
``sphash`` maps policy ids.  Reference: pfkey_setkey_reference.md §B.2 (SPD
messages, key_setdumpsp), §B.5; freebsd_ipsec_offload.md §6.3 for the hook
calls.  All SPD state changes run under ``sptree_lock``; the offload
``ipsec_accel_sync()`` is always called after it is released, as key.c
calls it after SPTREE_WUNLOCK.
"""

from __future__ import annotations

import errno as _errno
import struct
from typing import TYPE_CHECKING, Any, Optional, Sequence

from .errors import PfkeyError
from .extensions import SadbLifetime
from .ipsec import (
    IPPROTO_AH, IPPROTO_ESP, IPPROTO_IPCOMP, IPSEC_DIR, IPSEC_LEVEL,
    IPSEC_MANUAL_REQID_MAX, IPSEC_MAXREQ, IPSEC_MODE, IPSEC_POLICY, IPSEC_POLICYSCOPE,
)
from .key_msg import (
    E,
    EINVAL, RawExt, key_error, key_gather_mbuf, key_setsadbaddr, key_setsadbmsg,
    patch_u16, patch_u32, sadb_msghdr,
)
from .keydb import (
    IPSEC_SPSTATE_ALIVE, IPSEC_SPSTATE_IFNET, IPSEC_SPSTATE_PCB, SPEvent, _EMPTY_SA,
    ipsecrequest, key_checksockaddrs, sa_bytes, sa_from_raw, secasindex, secpolicy,
    sp_next_state,
)
from .keysock import KEY_SENDUP_ALL, KEY_SENDUP_ONE, KEY_SENDUP_REGISTERED
from .pfkeyv2 import SADB
from .spd import SecPolicyIndex

if TYPE_CHECKING:  # pragma: no cover
    from .key_iface import KeyEngine
    from .keysock import KeySocket


_POL = struct.Struct("<HHHBBII")
_REQ = struct.Struct("<HHBBH")
_IFHW = struct.Struct("<HHI32s")

_ALLOWED_TYPES = (IPSEC_POLICY.DISCARD, IPSEC_POLICY.NONE, IPSEC_POLICY.IPSEC)
_DIRS = (IPSEC_DIR.INBOUND, IPSEC_DIR.OUTBOUND)


def _ifhwoffl_bytes(name: str) -> bytes:
    raw = name.encode("latin-1", "replace")[:32]
    return _IFHW.pack(5, E.X_IF_HW_OFFL, 0, raw)


class KeySPDMixin:
    """The SPD handlers; mixed into ``pfkey.key.Key``."""

    # -- tree primitives (caller holds sptree_lock) ------------------------

    def key_getnewspid(self: "KeyEngine") -> int:
        """key_getnewspid: ++V_policy_id (wrapping ~0 -> 1), skipping used ids."""
        newid = 0
        for _ in range(self.spi_trycnt):
            if self.policy_id == 0xFFFFFFFF:
                self.policy_id = newid = 1
            else:
                self.policy_id += 1
                newid = self.policy_id
            if newid not in self.sphash:
                return newid
        return 0

    def key_insertsp(self: "KeyEngine", newsp: secpolicy) -> None:
        """key_insertsp: before the first SP of strictly greater priority."""
        self.sptree[newsp.spidx.dir].insert(newsp)
        self.sphash[newsp.id] = newsp
        newsp.state = sp_next_state(newsp.state, SPEvent.INSERT)
        self.sp_genid += 1
        self.hooks.ipsec_accel_spdadd(newsp, None)

    def key_detach(self: "KeyEngine", sp: secpolicy, event: SPEvent = SPEvent.DETACH) -> bool:
        """key_detach: unlink an ALIVE global SP; False if it was not."""
        if sp.state != IPSEC_SPSTATE_ALIVE:
            return False
        sp.state = sp_next_state(sp.state, event)
        self.hooks.ipsec_accel_spddel(sp)
        self.sptree[sp.spidx.dir].remove(sp)
        if self.sphash.get(sp.id) is sp:
            del self.sphash[sp.id]
        self.sp_genid += 1
        return True

    def key_unlink(self: "KeyEngine", sp: secpolicy) -> None:
        """key_unlink: detach, then wait for the offload layer (sync)."""
        with self.sptree_lock:
            self.key_detach(sp)
        self.hooks.ipsec_accel_sync()

    def key_newreqid(self: "KeyEngine") -> int:
        """key_newreqid: auto reqids above IPSEC_MANUAL_REQID_MAX.

        key.c keeps the counter in a function-static variable shared by all
        vnets; it is per kernel here so that independent kernels in one
        process do not disturb each other's numbering.
        """
        if self.auto_reqid == 0xFFFFFFFF:
            self.auto_reqid = IPSEC_MANUAL_REQID_MAX + 1
        else:
            self.auto_reqid += 1
        return self.auto_reqid

    def key_msg2sp(self: "KeyEngine", mhp: sadb_msghdr) -> secpolicy:
        """key_msg2sp: a secpolicy from the raw sadb_x_policy (spidx, id and
        state left for the caller).  UNIQUE-level reqids the kernel assigns
        are written back into the request, as key.c does."""
        xpl0 = mhp.ext[E.X_POLICY]
        buf = mhp.buf
        off = mhp.extoff[E.X_POLICY]
        end = off + mhp.extlen[E.X_POLICY]
        sp = secpolicy(spidx=None, policy=xpl0.type, priority=xpl0.priority)
        if xpl0.type in (IPSEC_POLICY.DISCARD, IPSEC_POLICY.NONE, IPSEC_POLICY.ENTRUST,
                         IPSEC_POLICY.BYPASS):
            return sp
        if xpl0.type != IPSEC_POLICY.IPSEC:
            raise EINVAL("invalid policy type")
        p = off + 16
        tlen = end - p
        while tlen > 0:
            rlen, proto, mode, level, reqid = _REQ.unpack_from(buf, p)
            if rlen < 8 or rlen > tlen:
                raise EINVAL("invalid ipsecrequest length")
            if len(sp.req) >= IPSEC_MAXREQ:
                raise EINVAL("too many ipsecrequests")
            if proto not in (IPPROTO_ESP, IPPROTO_AH, IPPROTO_IPCOMP):
                raise key_error(_errno.EPROTONOSUPPORT, f"invalid request proto {proto}")
            if mode not in (IPSEC_MODE.TRANSPORT, IPSEC_MODE.TUNNEL):
                raise EINVAL(f"invalid request mode {mode}")
            if level in (IPSEC_LEVEL.DEFAULT, IPSEC_LEVEL.USE, IPSEC_LEVEL.REQUIRE):
                sareqid = 0
            elif level == IPSEC_LEVEL.UNIQUE:
                if reqid > IPSEC_MANUAL_REQID_MAX:
                    reqid = 0
                    patch_u16(buf, p + 6, 0)
                if reqid == 0:
                    reqid = self.key_newreqid()
                    patch_u16(buf, p + 6, reqid)
                sareqid = reqid
            else:
                raise EINVAL(f"invalid request level {level}")
            if rlen > 8:
                alen = tlen - 8
                a = p + 8
                sl = buf[a]
                if alen < 16 or alen < 2 * sl or sl > 28:
                    raise EINVAL("invalid request address length")
                if rlen < 8 + 2 * sl:
                    raise EINVAL("ipsecrequest too short for its addresses")
                src = sa_from_raw(bytes(buf[a:a + sl]))
                b = a + sl
                if buf[b] != sl:
                    raise EINVAL("request address lengths differ")
                if buf[b + 1] != src.family:
                    raise EINVAL("request address families differ")
                dst = sa_from_raw(bytes(buf[b:b + sl]))
            else:
                if mode == IPSEC_MODE.TUNNEL:
                    raise EINVAL("tunnel request without addresses")
                src = dst = _EMPTY_SA
            sp.req.append(ipsecrequest(secasindex(src, dst, proto, mode, sareqid), level))
            tlen -= rlen
            p += rlen
        if not sp.req:
            raise EINVAL("IPsec policy without a valid request")
        return sp

    def key_sp2msg(self: "KeyEngine", sp: secpolicy) -> list[RawExt]:
        """key_sp2mbuf / key_sp2msg: the policy extension (+ IF_HW_OFFL).

        FreeBSD writes the IF_HW_OFFL extension over the first request
        (freebsd_ipsec_offload.md §18); by default it is appended after the
        policy, the "sp2msg_ifhwoffl_overlap" quirk reproduces FreeBSD.
        """
        if sp.state == IPSEC_SPSTATE_IFNET:
            scope = IPSEC_POLICYSCOPE.IFNET
        elif sp.state == IPSEC_SPSTATE_PCB:
            scope = IPSEC_POLICYSCOPE.PCB
        else:
            scope = IPSEC_POLICYSCOPE.GLOBAL
        reqs = b""
        if sp.policy == IPSEC_POLICY.IPSEC:
            parts = []
            for isr in sp.req:
                a = sa_bytes(isr.saidx.src) + sa_bytes(isr.saidx.dst)
                ilen = (8 + len(a) + 7) & ~7
                parts.append(_REQ.pack(ilen, isr.saidx.proto, isr.saidx.mode, isr.level,
                                       isr.saidx.reqid & 0xFFFF) + a.ljust(ilen - 8, b"\0"))
            reqs = b"".join(parts)
        xlen = 16 + len(reqs)
        pol = _POL.pack(xlen >> 3, E.X_POLICY, sp.policy, sp.spidx.dir, scope,
                        sp.id & 0xFFFFFFFF, sp.priority & 0xFFFFFFFF) + reqs
        if sp.accel_ifname is None:
            return [RawExt(E.X_POLICY, pol)]
        if "sp2msg_ifhwoffl_overlap" in self.quirks:
            if sp.policy != IPSEC_POLICY.IPSEC:
                return [RawExt(E.X_POLICY, pol)]     # no room was reserved
            body = bytearray(pol + bytes(40))
            body[16:56] = _ifhwoffl_bytes(sp.accel_ifname)
            return [RawExt(E.X_POLICY, bytes(body))]
        return [RawExt(E.X_POLICY, pol),
                RawExt(E.X_IF_HW_OFFL, _ifhwoffl_bytes(sp.accel_ifname))]

    def key_setdumpsp(self: "KeyEngine", sp: secpolicy, mtype: int, seq: int, pid: int,
                      extra_ref: int = 0) -> bytes:
        """key_setdumpsp: the SPDGET / SPDDUMP format."""
        spidx = sp.spidx
        exts: list[Any] = [
            key_setsadbaddr(E.ADDRESS_SRC, spidx.src, spidx.prefs, spidx.ul_proto),
            key_setsadbaddr(E.ADDRESS_DST, spidx.dst, spidx.prefd, spidx.ul_proto),
        ]
        exts.extend(self.key_sp2msg(sp))
        if sp.lifetime:
            exts.append(SadbLifetime(E.LIFETIME_CURRENT, 0, 0, sp.created, sp.lastused))
            exts.append(SadbLifetime(E.LIFETIME_HARD, 0, 0, sp.lifetime, sp.validtime))
        return key_setsadbmsg(mtype, 0, seq, pid, sp.refcnt + extra_ref, exts)

    def key_spdexpire(self: "KeyEngine", sp: secpolicy) -> int:
        """key_spdexpire: SADB_X_SPDEXPIRE to registered sockets."""
        spidx = sp.spidx
        exts: list[Any] = [
            SadbLifetime(E.LIFETIME_CURRENT, 0, 0, sp.created, sp.lastused),
            SadbLifetime(E.LIFETIME_HARD, 0, 0, sp.lifetime, sp.validtime),
            key_setsadbaddr(E.ADDRESS_SRC, spidx.src, spidx.prefs, spidx.ul_proto),
            key_setsadbaddr(E.ADDRESS_DST, spidx.dst, spidx.prefd, spidx.ul_proto),
        ]
        exts.extend(self.key_sp2msg(sp))
        return self.key_sendup_mbuf(None, key_setsadbmsg(SADB.X_SPDEXPIRE, 0, 0, 0, 0, exts),
                                    KEY_SENDUP_REGISTERED)

    # -- SADB_X_SPDADD / SPDUPDATE / SPDSETIDX --------------------------------

    def _spd_check_common(self: "KeyEngine", mhp: sadb_msghdr) -> Any:
        ext = mhp.ext
        if E.ADDRESS_SRC not in ext or E.ADDRESS_DST not in ext or E.X_POLICY not in ext:
            raise EINVAL("missing ADDRESS_SRC, ADDRESS_DST or X_POLICY")
        xpl0 = ext[E.X_POLICY]
        if xpl0.dir not in _DIRS:
            raise EINVAL(f"invalid SP direction {xpl0.dir}")
        if xpl0.type not in _ALLOWED_TYPES:
            raise EINVAL(f"invalid policy type {xpl0.type}")
        return xpl0

    def key_spdadd(self: "KeyEngine", so: Optional["KeySocket"], mhp: sadb_msghdr) -> int:
        """key_spdadd: insert a global policy (SPDUPDATE replaces); reply ALL."""
        ext = mhp.ext
        xpl0 = self._spd_check_common(mhp)
        lft = ext.get(E.LIFETIME_HARD)
        if xpl0.type == IPSEC_POLICY.IPSEC and mhp.extlen[E.X_POLICY] <= 16:
            raise EINVAL("an IPsec policy needs requests")
        src0, dst0 = ext[E.ADDRESS_SRC], ext[E.ADDRESS_DST]
        err = key_checksockaddrs(src0.addr, dst0.addr)
        if err or src0.proto != dst0.proto:
            raise key_error(err or _errno.EINVAL, "invalid sockaddr")
        spidx = SecPolicyIndex(xpl0.dir, src0.addr, dst0.addr, src0.prefixlen,
                               dst0.prefixlen, src0.proto)
        now = self.clock.now()
        failure: Optional[PfkeyError] = None
        with self.sptree_lock:
            oldsp = self.sptree[xpl0.dir].find_exact(spidx)
            if oldsp is not None and mhp.msg.type != SADB.X_SPDUPDATE:
                raise key_error(_errno.EEXIST, "a policy with this selector exists")
            try:
                newsp = self.key_msg2sp(mhp)
            except PfkeyError as exc:
                # key.c unlinks the policy SPDUPDATE was to replace even
                # though the new one was refused.
                if oldsp is not None:
                    self.key_detach(oldsp)
                failure = exc
            else:
                newsp.spidx = spidx
                newsp.created = newsp.lastused = now
                newsp.lifetime = lft.addtime if lft is not None else 0
                newsp.validtime = lft.usetime if lft is not None else 0
                xof = ext.get(E.X_IF_HW_OFFL)
                if xof is not None:
                    newsp.accel_ifname = xof.ifname
                newsp.id = self.key_getnewspid()
                if newsp.id == 0:
                    if oldsp is not None:
                        self.key_detach(oldsp)
                    failure = key_error(_errno.ENOBUFS, "no policy id available")
                else:
                    if oldsp is not None:
                        self.key_detach(oldsp)
                    self.key_insertsp(newsp)
        if oldsp is not None:
            self.hooks.ipsec_accel_sync()
        if failure is not None:
            raise failure
        order = (E.X_POLICY, E.LIFETIME_HARD, E.ADDRESS_SRC, E.ADDRESS_DST) if lft is not None \
            else (E.X_POLICY, E.ADDRESS_SRC, E.ADDRESS_DST)
        reply = bytearray(key_gather_mbuf(mhp, *order))
        patch_u32(reply, 16 + 8, newsp.id)
        return self.key_sendup_mbuf(so, bytes(reply), KEY_SENDUP_ALL)

    # -- SADB_X_SPDDELETE / SPDDELETE2 ---------------------------------------------

    def key_spddelete(self: "KeyEngine", so: Optional["KeySocket"], mhp: sadb_msghdr) -> int:
        """key_spddelete: by exact selector in the global SPD; reply ALL."""
        ext = mhp.ext
        xpl0 = self._spd_check_common(mhp)
        src0, dst0 = ext[E.ADDRESS_SRC], ext[E.ADDRESS_DST]
        if key_checksockaddrs(src0.addr, dst0.addr) or src0.proto != dst0.proto:
            raise EINVAL("invalid sockaddr")
        spidx = SecPolicyIndex(xpl0.dir, src0.addr, dst0.addr, src0.prefixlen,
                               dst0.prefixlen, src0.proto)
        with self.sptree_lock:
            sp = self.sptree[xpl0.dir].find_exact(spidx)
            if sp is None:
                raise EINVAL("no policy with this selector")
            patch_u32(mhp.buf, mhp.extoff[E.X_POLICY] + 8, sp.id)
            # key_spddelete tells the offload layer before key_unlink does it
            # again (the hook is one-shot).
            self.hooks.ipsec_accel_spddel(sp)
            self.key_detach(sp)
        self.hooks.ipsec_accel_sync()
        return self.key_sendup_mbuf(
            so, key_gather_mbuf(mhp, E.X_POLICY, E.ADDRESS_SRC, E.ADDRESS_DST), KEY_SENDUP_ALL)

    def key_spddelete2(self: "KeyEngine", so: Optional["KeySocket"], mhp: sadb_msghdr) -> int:
        """key_spddelete2: by policy id; ifnet policies cannot go (EACCES)."""
        xpl0 = mhp.ext.get(E.X_POLICY)
        if xpl0 is None:
            raise EINVAL("X_POLICY required")
        with self.sptree_lock:
            sp = self.sphash.get(xpl0.id)
            if sp is None:
                raise EINVAL(f"no policy with id {xpl0.id}")
            self.key_detach(sp)
        self.hooks.ipsec_accel_sync()
        if sp.state == IPSEC_SPSTATE_IFNET:
            raise key_error(_errno.EACCES, f"policy {xpl0.id} belongs to an interface")
        return self.key_sendup_mbuf(so, key_gather_mbuf(mhp, E.X_POLICY), KEY_SENDUP_ALL)

    # -- SADB_X_SPDGET / SPDDUMP / SPDFLUSH ------------------------------------------

    def key_spdget(self: "KeyEngine", so: Optional["KeySocket"], mhp: sadb_msghdr) -> int:
        """key_spdget: one policy by id, key_setdumpsp format, ONE."""
        xpl0 = mhp.ext.get(E.X_POLICY)
        if xpl0 is None:
            raise EINVAL("X_POLICY required")
        with self.sptree_lock:
            sp = self.sphash.get(xpl0.id)
            if sp is None:
                raise key_error(_errno.ENOENT, f"no policy with id {xpl0.id}")
            n = self.key_setdumpsp(sp, SADB.X_SPDGET, mhp.msg.seq, mhp.msg.pid, extra_ref=1)
        return self.key_sendup_mbuf(so, n, KEY_SENDUP_ONE)

    def key_spddump(self: "KeyEngine", so: Optional["KeySocket"], mhp: sadb_msghdr) -> int:
        """key_spddump: satype is a scope mask (0 = all); seq counts down."""
        scope = mhp.msg.satype or 0xFF
        with self.sptree_lock:
            sps: list[secpolicy] = []
            for d in range(IPSEC_DIR.MAX):
                if scope & IPSEC_POLICYSCOPE.GLOBAL:
                    sps.extend(self.sptree[d])
                if scope & IPSEC_POLICYSCOPE.IFNET:
                    sps.extend(self.sptree_ifnet[d])
            if not sps:
                raise key_error(_errno.ENOENT, "no policy to dump")
            cnt = len(sps)
            for sp in sps:
                cnt -= 1
                self.key_sendup_mbuf(so, self.key_setdumpsp(sp, SADB.X_SPDDUMP, cnt,
                                                            mhp.msg.pid), KEY_SENDUP_ONE)
        return 0

    def key_spdflush(self: "KeyEngine", so: Optional["KeySocket"], mhp: sadb_msghdr) -> int:
        """key_spdflush: empty the global SPD (ifnet policies stay); no SPDEXPIRE."""
        if len(mhp.buf) != 16:
            raise EINVAL("SPDFLUSH takes no extensions")
        with self.sptree_lock:
            for d in range(IPSEC_DIR.MAX):
                drain: list[secpolicy] = list(self.sptree[d])
                self.sptree[d].clear()
                for sp in drain:
                    sp.state = sp_next_state(sp.state, SPEvent.FLUSH)
                    self.hooks.ipsec_accel_spddel(sp)
                    if self.sphash.get(sp.id) is sp:
                        del self.sphash[sp.id]
            self.sp_genid += 1
        return self.key_sendup_mbuf(so, key_gather_mbuf(mhp), KEY_SENDUP_ALL)

    # -- if_ipsec(4) policies -----------------------------------------------------------

    def key_register_ifnet(self: "KeyEngine", spp: Sequence[secpolicy]) -> int:
        """key_register_ifnet: insert VTI policies into the ifnet lists and
        announce each with an SPDADD to all sockets.  Returns 0 or EAGAIN."""
        with self.sptree_lock:
            # Ids first (they only grow, so they cannot collide), then link.
            for sp in spp:
                sp.id = self.key_getnewspid()
                if sp.id == 0:
                    return _errno.EAGAIN
            for sp in spp:
                self.sptree_ifnet[sp.spidx.dir].insert(sp)
                self.sphash[sp.id] = sp
                sp.state = sp_next_state(sp.state, SPEvent.REGISTER_IFNET)
                self.hooks.ipsec_accel_spdadd(sp, None)
        for sp in spp:
            self.key_sendup_mbuf(None, self.key_setdumpsp(sp, SADB.X_SPDADD, 0, 0),
                                 KEY_SENDUP_ALL)
        return 0

    def key_unregister_ifnet(self: "KeyEngine", spp: Sequence[secpolicy]) -> None:
        """key_unregister_ifnet: remove VTI policies, announce SPDDELETE."""
        with self.sptree_lock:
            for sp in spp:
                if sp.state != IPSEC_SPSTATE_IFNET:
                    continue
                sp.state = sp_next_state(sp.state, SPEvent.UNREGISTER_IFNET)
                self.hooks.ipsec_accel_spddel(sp)
                self.sptree_ifnet[sp.spidx.dir].remove(sp)
                if self.sphash.get(sp.id) is sp:
                    del self.sphash[sp.id]
        self.hooks.ipsec_accel_sync()
        for sp in spp:
            self.key_sendup_mbuf(None, self.key_setdumpsp(sp, SADB.X_SPDDELETE, 0, 0),
                                 KEY_SENDUP_ALL)

    # -- packet side ------------------------------------------------------------------

    def key_allocsp(self: "KeyEngine", spidx: SecPolicyIndex, dir: int) -> Optional[secpolicy]:
        """key_allocsp: the first global policy of ``dir`` matching the packet
        selector (ports inside the sockaddrs); updates ``lastused``."""
        sp: Optional[secpolicy]  # the SPD trees are untyped (KeyDB's factory)
        with self.sptree_lock:
            sp = self.sptree[dir].lookup(spidx.src, spidx.dst, spidx.ul_proto)
        if sp is not None:
            now = self.clock.now()
            if sp.lastused != now:
                sp.lastused = now
        return sp

    def key_havesp(self: "KeyEngine", dir: int) -> bool:
        return len(self.sptree[dir]) != 0


__all__ = ["KeySPDMixin"]
