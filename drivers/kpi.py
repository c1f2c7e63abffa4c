"""The driver KPI half of :class:`drivers.base.MockNic`: FreeBSD's
``struct if_ipsec_accel_methods`` (freebsd_ipsec_offload.md §4) as every mock
NIC implements it, and the hooks profiles override.

* ``if_sa_newkey`` / ``if_sa_newkey_dir`` -> :meth:`DriverKpi.sa_install`
  (read the SA, :meth:`~DriverKpi.sa_check`, :meth:`~DriverKpi.sa_directions`,
  load the key, :meth:`~DriverKpi.hw_alloc` per direction, undo on failure),
  then publish the handle in the TX/RX lookup maps and the call ledger;
* ``if_sa_deinstall`` -> ledger, then :meth:`DriverKpi.sa_remove` (unpublish,
  cancel the handle's counter work, :meth:`~DriverKpi.hw_free`);
* ``if_sa_cnt``, ``if_hwassist``;
* ``if_spdadd`` / ``if_spddel`` (registered only by profiles with policy
  offload) -> :meth:`~DriverKpi.sp_check`, :meth:`~DriverKpi.sp_attrs`.

Locks are the NIC's (see drivers/base.py): ``_lock`` for the handle map,
lookup maps and ledger; table locks inside hw_alloc/hw_free; ``_cnt_lock``
for counters; ``_poll_lock`` as the counter-work barrier.  Nothing here calls
out of the driver with a lock held.
"""

from __future__ import annotations

import errno as _errno
from typing import TYPE_CHECKING, Any, Optional

from ipsec_accel.ifnet import IFT_L2VLAN, Ifnet

from ipsec_accel.if_vlan import vlan_tag, vlan_trunkdev
from ipsec_accel.mbuf import (
    CSUM_IP, CSUM_IP6_TCP, CSUM_IP6_TSO, CSUM_IP6_UDP, CSUM_TCP, CSUM_TSO, CSUM_UDP,
)
from ipsec_accel.xform import XformInitError, esp_init_algorithms

from .hw import (
    DIR_IN, DIR_OUT, DIR_UNKNOWN, KIND_INVALID, KIND_RESOURCE, KIND_UNSUPPORTED, MODE_CRYPTO,
    MODE_PACKET, HwSa, NicSa, SaParams,
)

if TYPE_CHECKING:  # pragma: no cover
    from .nic_iface import NicCore

__all__ = ["DriverKpi", "HWASSIST_MASK"]

#: mlx5e_if_ipsec_hwassist: what the NIC can still do on the inner packet.
HWASSIST_MASK = CSUM_TSO | CSUM_TCP | CSUM_UDP | CSUM_IP | CSUM_IP6_TSO | CSUM_IP6_TCP \
    | CSUM_IP6_UDP


class DriverKpi:
    """Mixed into :class:`drivers.base.MockNic` (module docstring)."""

    # -- the KPI: SAs ------------------------------------------------------------------

    def if_sa_newkey(self: "NicCore", ifp: Ifnet, sav: Any, drv_spi: int) -> tuple[int, Any]:
        """``if_sa_newkey``: the direction is not known (FreeBSD)."""
        return self._newkey(ifp, sav, int(drv_spi), DIR_UNKNOWN, "if_sa_newkey")

    def if_sa_newkey_dir(self: "NicCore", ifp: Ifnet, sav: Any, drv_spi: int,
                         direction: int) -> tuple[int, Any]:
        """The offload layer's "sa_direction" extension: same, direction
        given (IPSEC_DIR_INBOUND / OUTBOUND, or 0 = unknown)."""
        return self._newkey(ifp, sav, int(drv_spi), int(direction), "if_sa_newkey_dir")

    def _newkey(self: "NicCore", ifpo: Ifnet, sav: Any, drv_spi: int, direction: int,
                op: str) -> tuple[int, Any]:
        with self._cnt_lock:
            self.kpi[op] += 1
        error, priv = self.sa_install(ifpo, sav, drv_spi, direction)
        if error:
            with self._cnt_lock:
                self.kpi[f"{op}_error_{error}"] += 1
            return error, None
        # sa_install's contract: (0, NicSa) or (errno, None).
        assert priv is not None
        with self._lock:
            if drv_spi in self._ledger:
                dup = True
            else:
                dup = False
                stale = self._handles.get(drv_spi)
                if stale is not None:
                    # Left behind by a deinstall this driver failed to carry
                    # out (the faulty profile): its slots stay leaked, the
                    # lookups now belong to the new handle.
                    self._unpublish(stale)
                    stale.live = False
                self._publish(priv)
                self._ledger[drv_spi] = priv
        if dup:
            self._violation(f"{op}: drv_spi {drv_spi} is already installed")
            self._release_entries(priv)
            return self.refuse(op, "drv_spi already installed", KIND_INVALID, _errno.EEXIST,
                               getattr(sav, "spi", 0)), None
        with self._cnt_lock:
            self.kpi[f"{op}_ok"] += 1
        return 0, priv

    def sa_install(self: "NicCore", ifpo: Ifnet, sav: Any, drv_spi: int,
                   direction: int) -> tuple[int, Optional[NicSa]]:
        """Validate, choose directions, load the key, take table slots.
        Returns (0, NicSa) or (errno, None); nothing is published yet."""
        op = "newkey"
        if self.gone:
            return self.refuse(op, "device gone", KIND_UNSUPPORTED, _errno.EOPNOTSUPP), None
        try:
            p = SaParams.from_sav(sav)
        except (AttributeError, TypeError, ValueError) as exc:
            return self.refuse(op, f"not an SA: {exc}", KIND_INVALID, _errno.EINVAL), None
        err = self.sa_check(p, direction)
        if err:
            return err, None
        dirs = self.sa_directions(p, direction)
        if isinstance(dirs, int):
            return dirs, None
        vid = 0
        if ifpo.if_type == IFT_L2VLAN:
            vid = vlan_tag(ifpo) or 0
        try:
            # The card loads the key now (its context object is built on the
            # first packet, HwSa.context): refuse what it could not load.
            esp_init_algorithms(p.alg_enc, p.enc_key, p.alg_auth, p.auth_key)
        except XformInitError as exc:
            return self.refuse(op, f"key context: {exc}", KIND_UNSUPPORTED,
                               _errno.EINVAL, p.spi), None
        entries: list[HwSa] = []
        for d in dirs:
            e = self.make_entry(d, drv_spi, p, sav, ifpo, vid)
            err = self.hw_alloc(e)
            if err:
                self._release_entries_list(entries)
                return err, None
            entries.append(e)
        return 0, NicSa(self, drv_spi, sav, ifpo, entries, direction)

    def make_entry(self: "NicCore", direction: int, drv_spi: int, p: SaParams, sav: Any,
                   ifpo: Ifnet, vid: int) -> HwSa:
        """One hardware SA (its key context is built on first use)."""
        return HwSa(direction, drv_spi, p, sav, ifpo, None, owner=self,
                    rx_mode=self.offload_modes[0] if self.offload_modes else MODE_PACKET,
                    vid=vid, factory=self.esp_state_factory,
                    want_aead=MODE_CRYPTO in self.offload_modes)

    def _publish(self: "NicCore", priv: NicSa) -> None:
        # Caller holds _lock.
        self._handles[priv.drv_spi] = priv
        for e in priv.entries:
            if e.direction == DIR_OUT:
                self._tx[e.drv_spi] = e
            elif e.direction == DIR_IN:
                k = (e.params.dst, e.params.spi)
                lst = self._rx.get(k)
                # Copy-on-write: a datapath reader keeps a stable list.
                self._rx[k] = [e] if lst is None else lst + [e]
                if e.params.natt is not None:
                    self._natt_refs[e.params.natt[1]] += 1
                    self._natt_ports = frozenset(self._natt_refs) | {4500}

    def _unpublish(self: "NicCore", priv: NicSa) -> None:
        # Caller holds _lock.
        if self._handles.get(priv.drv_spi) is priv:
            del self._handles[priv.drv_spi]
        for e in priv.entries:
            if e.direction == DIR_OUT and self._tx.get(e.drv_spi) is e:
                del self._tx[e.drv_spi]
            elif e.direction == DIR_IN:
                k = (e.params.dst, e.params.spi)
                lst = self._rx.get(k)
                if lst is not None and e in lst:
                    rest = [x for x in lst if x is not e]
                    if rest:
                        self._rx[k] = rest
                    else:
                        del self._rx[k]
                    if e.params.natt is not None:
                        port = e.params.natt[1]
                        self._natt_refs[port] -= 1
                        if self._natt_refs[port] <= 0:
                            del self._natt_refs[port]
                        self._natt_ports = frozenset(self._natt_refs) | {4500}

    def _release_entries(self: "NicCore", priv: NicSa) -> None:
        self._release_entries_list(priv.entries)

    def _release_entries_list(self: "NicCore", entries: list[HwSa]) -> None:
        for e in entries:
            e.live = False
            self.hw_free(e)

    def if_sa_deinstall(self: "NicCore", ifp: Ifnet, drv_spi: int, priv: Any) -> int:
        """``if_sa_deinstall``: both directions go; the handle's counter work
        is cancelled first.  The caller ignores the return value."""
        with self._cnt_lock:
            self.kpi["if_sa_deinstall"] += 1
        with self._lock:
            known = self._ledger.pop(drv_spi, None)
        if known is None:
            self._violation(f"if_sa_deinstall of drv_spi {drv_spi} without a successful "
                            f"if_sa_newkey (or a second time)")
        return self.sa_remove(ifp, drv_spi, priv)

    def sa_remove(self: "NicCore", ifp: Ifnet, drv_spi: int, priv: Any) -> int:
        """Remove a handle's hardware state (profiles with a remote table, the
        VF, override :meth:`hw_free`)."""
        with self._lock:
            cur = self._handles.get(drv_spi)
            if cur is None or (priv is not None and cur is not priv):
                bad = True
            else:
                bad = False
                self._unpublish(cur)
                cur.live = False
        if bad:
            if cur is not None:
                self._violation(f"if_sa_deinstall of drv_spi {drv_spi} with a foreign priv "
                                f"{priv!r}")
            return _errno.ENOENT
        assert cur is not None
        # cancel_delayed_work_sync: wait for a poll run reporting this handle.
        with self._poll_lock:
            pass
        self._release_entries(cur)
        return 0

    def outstanding(self: "NicCore") -> dict[int, Any]:
        """drv_spi -> priv of every successful newkey with no deinstall call
        yet (empty after a flush has drained)."""
        with self._lock:
            return dict(self._ledger)

    def if_sa_cnt(self: "NicCore", ifp: Ifnet, sav: Any, drv_spi: int, priv: Any, lt: Any) -> int:
        """``if_sa_cnt``: bytes and packets over both directions (u32 cast)."""
        h = priv if isinstance(priv, NicSa) else self._handles.get(drv_spi)
        octets = packets = 0
        if h is not None:
            with self._cnt_lock:
                octets, packets = h.counters()
        lt.bytes = octets
        lt.allocations = packets & 0xFFFFFFFF
        return 0

    def if_hwassist(self: "NicCore", ifp: Ifnet, sav: Any, drv_spi: int, priv: Any) -> int:
        trunk = vlan_trunkdev(ifp) if ifp.if_type == IFT_L2VLAN else ifp
        if trunk is None:
            return 0
        return trunk.if_hwassist & HWASSIST_MASK

    # -- profile hooks (defaults: accept what EspState can run, one shared table) -----

    def sa_check(self: "NicCore", p: SaParams, direction: int) -> int:
        """0, or the errno of a refusal (use :meth:`refuse`)."""
        if p.proto != 50:
            return self.refuse("newkey", f"protocol {p.proto} is not ESP", KIND_UNSUPPORTED,
                               _errno.EINVAL, p.spi)
        if p.state == 3:
            return self.refuse("newkey", "SA is DEAD", KIND_UNSUPPORTED, _errno.EINVAL, p.spi)
        return 0

    def sa_directions(self: "NicCore", p: SaParams, direction: int) -> tuple[int, ...] | int:
        """Which hardware SAs to install: both when the direction is unknown
        (the FreeBSD case, as mlx5), else the one asked for."""
        if direction == DIR_UNKNOWN:
            return (DIR_IN, DIR_OUT)
        return (direction,)

    def hw_alloc(self: "NicCore", e: HwSa) -> int:
        """Place one hardware SA; ENOSPC when the table is full."""
        t = self.sa_table
        with t.lock:
            idx = t.alloc(e)
        if idx < 0:
            return self.refuse("newkey", f"{t.name} table full ({t.capacity})", KIND_RESOURCE,
                               _errno.ENOSPC, e.params.spi)
        e.table, e.index = t, idx
        return 0

    def hw_free(self: "NicCore", e: HwSa) -> None:
        t = e.table
        if t is None:
            return
        with t.lock:
            if t.get(e.index) is e:
                t.free(e.index)
        e.table, e.index = None, -1

    # -- the KPI: policies (profiles with has_spd_ops) ----------------------------------

    def if_spdadd(self: "NicCore", ifp: Ifnet, sp: Any, inp: Any) -> tuple[int, Any]:
        with self._cnt_lock:
            self.kpi["if_spdadd"] += 1
        if self.gone:
            return self.refuse("spdadd", "device gone", KIND_UNSUPPORTED,
                               _errno.EOPNOTSUPP), None
        err = self.sp_check(sp, inp)
        if err:
            return err, None
        with self._lock:
            pid = next(self._pol_ids)
            entry = {"id": pid, "sp": sp, "inp": inp, "ifpo": ifp,
                     "vid": (vlan_tag(ifp) or 0) if ifp.if_type == IFT_L2VLAN else 0}
            entry.update(self.sp_attrs(sp, inp))
            self._policies[pid] = entry
        with self._cnt_lock:
            self.kpi["if_spdadd_ok"] += 1
        return 0, entry

    def if_spddel(self: "NicCore", ifp: Ifnet, sp: Any, priv: Any) -> int:
        with self._cnt_lock:
            self.kpi["if_spddel"] += 1
        pid = priv.get("id") if isinstance(priv, dict) else None
        with self._lock:
            found = pid is not None and self._policies.pop(pid, None) is priv
        if not found:
            self._violation(f"if_spddel of a policy not installed: {priv!r}")
            return _errno.ENOENT
        return 0

    def sp_check(self: "NicCore", sp: Any, inp: Any) -> int:
        """0, or the errno refusing a policy (any non-zero: REJECTED)."""
        return 0

    def sp_attrs(self: "NicCore", sp: Any, inp: Any) -> dict[str, Any]:
        """What the card programs for a policy (kept in the entry)."""
        return {}
