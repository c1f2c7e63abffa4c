"""An ixgbe-like PF (Intel 82599/X540/X550): Linux
``drivers/net/ethernet/intel/ixgbe/ixgbe_ipsec.c`` + ``ixgbe_ipsec.h``
(linux_xfrm_offload.md §5, profile P2 of §10), on FreeBSD's driver KPI.

Hardware modelled:

* **Three tables shared by the PF and all its VFs**: RX SA 1024, TX SA 1024,
  RX IP 128 (``IXGBE_IPSEC_MAX_SA_COUNT``, ``IXGBE_IPSEC_MAX_RX_IP_COUNT``).
  The RX IP table is reference counted: RX SAs with the same destination
  share one IP slot (the card has no 1:1 key/IP mapping).  Handles as the
  Linux driver numbers them: RX index, or TX index + 1024.  One lock
  (``ipsec_lock``) guards the three tables and the PF's RX index; VF
  requests reach it through the mailbox thread (:mod:`drivers.ixgbevf`).
* **Validation** (``ixgbe_ipsec_add_sa`` / ``ixgbe_ipsec_parse_proto_keys``
  and the xfrm core): protocol must be ESP (the driver also takes AH, which
  the core never offloads and the engine cannot run); transport mode only
  (FreeBSD's mode "any" counts as transport);
  no compression; AES-GCM-16 ("rfc4106(gcm(aes))", ICV 128) with a 128-bit
  key + salt only; no ESN (no ``advance_esn``: the core refuses); no UDP
  encapsulation; an RX destination clashing with a BMC management filter
  (``mgmt_ips``).  Linux answers all of these EINVAL, which fails the user's
  request; on FreeBSD's KPI the default ``errno_style="freebsd"`` answers
  EOPNOTSUPP so the SA is recorded REJECTED and runs in software (e.g. an
  SA with a 256-bit key: ``hw offl`` lines with zeros, no ``hw offl if:``).
* **ENOSPC**, in both styles, when the RX SA table, the RX IP table ("No
  space for SA in Rx IP SA table", a separate path) or the TX table is full:
  an "other error" for the infrastructure (nothing recorded, drv_spi leaked
  in FreeBSD) -- exactly Linux's point that a full table is not "not
  supported".
* **TX while SR-IOV VFs exist and the bridge is not VEPA**: EOPNOTSUPP
  (``vfs_not_vepa`` option).  A direction-less install needs both
  directions, so the whole SA is then REJECTED.
* **SPI collisions across functions** (seed 000): the PF refuses an RX SA
  whose (destination, SPI, protocol) is already programmed for *another*
  function (PF or VF) with EEXIST (``spi_collision="dst"``; ``"spi"``
  compares the SPI alone, for tenants whose inner address spaces overlap).
  Linux relies on the core's SPI uniqueness, which holds per host only.
* **Reset** (:meth:`IxgbePf.reset`): the PF's own entries are reprogrammed
  from its shadow tables; every VF-owned entry is dropped (the VFs are not
  told; their later deletes succeed as no-ops).
* Offload mode: crypto only (the card encrypts what the stack framed).
  ``modes=("crypto", "packet")`` lets a datapath that only does packet
  offload use it anyway.
* VF management: ``set_vf_trust(vf_id, on)`` (``ip link set PF vf N trust
  on``) and ``vf_ipsec`` (``ethtool --set-priv-flags PF vf-ipsec on``).
"""

from __future__ import annotations

import errno as _errno
import threading
from typing import TYPE_CHECKING, Any, ClassVar, Final, Iterable, Optional

from pfkey.ipsec import IPSEC_MODE
from pfkey.pfkeyv2 import SADB_EALG

from .base import MockNic
from .hw import (
    DIR_IN, DIR_OUT, IPPROTO_ESP, KIND_COLLISION, KIND_RESOURCE, KIND_UNSUPPORTED,
    MODE_CRYPTO, HwSa, HwTable, SaParams,
)

if TYPE_CHECKING:  # pragma: no cover
    from .ixgbevf import IxgbeVf, PfMailbox

__all__ = ["IxgbePf", "IXGBE_IPSEC_MAX_SA_COUNT", "IXGBE_IPSEC_MAX_RX_IP_COUNT",
           "IXGBE_IPSEC_BASE_TX_INDEX", "IXGBE_VF_IPSEC_ADD", "IXGBE_VF_IPSEC_DEL"]

IXGBE_IPSEC_MAX_SA_COUNT: Final = 1024
IXGBE_IPSEC_MAX_RX_IP_COUNT: Final = 128
IXGBE_IPSEC_BASE_TX_INDEX: Final = IXGBE_IPSEC_MAX_SA_COUNT
#: ixgbe_mbx.h: the VF's IPsec mailbox messages.
IXGBE_VF_IPSEC_ADD: Final = 0x0D
IXGBE_VF_IPSEC_DEL: Final = 0x0E

_GCM16: Final = int(SADB_EALG.X_AESGCM16)
_TUNNEL: Final = int(IPSEC_MODE.TUNNEL)


class _RxIp:
    """One RX IP table slot: an address and how many RX SAs use it."""

    __slots__ = ("addr", "refs")

    def __init__(self, addr: bytes) -> None:
        self.addr = addr
        self.refs = 1


class IxgbePf(MockNic):
    """The PF (module docstring).  Options: ``rx_sa``, ``tx_sa``, ``rx_ip``
    table sizes; ``mgmt_ips`` (addresses of BMC filters, text or bytes);
    ``vfs_not_vepa``; ``vf_ipsec``; ``spi_collision`` ("dst"/"spi")."""

    profile: ClassVar[str] = "ixgbe"
    dname: ClassVar[str] = "ix"
    default_modes: ClassVar[tuple[str, ...]] = (MODE_CRYPTO,)
    default_poll_interval: ClassVar[float] = 1.0

    def __init__(self, name: Optional[str] = None, *, rx_sa: int = IXGBE_IPSEC_MAX_SA_COUNT,
                 tx_sa: int = IXGBE_IPSEC_MAX_SA_COUNT,
                 rx_ip: int = IXGBE_IPSEC_MAX_RX_IP_COUNT, mgmt_ips: Iterable[Any] = (),
                 vfs_not_vepa: bool = False, vf_ipsec: bool = False,
                 spi_collision: str = "dst", **kw: Any) -> None:
        super().__init__(name, **kw)
        if spi_collision not in ("dst", "spi"):
            raise ValueError("spi_collision must be 'dst' or 'spi'")
        # adapter->ipsec: one lock for the three tables (shared with VFs).
        self.ipsec_lock = threading.Lock()
        self.rx_table = HwTable(f"{self.name}.rx_sa", rx_sa, self.ipsec_lock)
        self.tx_table = HwTable(f"{self.name}.tx_sa", tx_sa, self.ipsec_lock)
        self.rxip_table = HwTable(f"{self.name}.rx_ip", rx_ip, self.ipsec_lock)
        self.sa_table = self.rx_table
        self.mgmt_ips = {_addr(a) for a in mgmt_ips}
        self.vfs_not_vepa = vfs_not_vepa
        self.vf_ipsec = vf_ipsec
        self.spi_collision = spi_collision
        self.vf_trust: dict[int, bool] = {}
        self.vfs: dict[int, "IxgbeVf"] = {}
        # (dst, spi) or (spi,) -> RX entries programmed, any owner.
        self.rx_index: dict[tuple[Any, ...], list[HwSa]] = {}
        self.resets = 0
        self._mailbox: Optional["PfMailbox"] = None

    # -- VF management -----------------------------------------------------------------

    def set_vf_trust(self, vf_id: int, on: bool = True) -> None:
        """``ip link set <pf> vf <vf_id> trust on|off``."""
        self.vf_trust[vf_id] = bool(on)

    @property
    def mailbox(self) -> "PfMailbox":
        if self._mailbox is None:
            from .ixgbevf import PfMailbox
            with self.ipsec_lock:
                if self._mailbox is None:
                    self._mailbox = PfMailbox(self)
        return self._mailbox

    @property
    def engine_on(self) -> bool:
        """The engine starts with the first SA and stops with the last."""
        return bool(self.rx_table.count or self.tx_table.count)

    # -- validation --------------------------------------------------------------------

    def _no(self, reason: str, p: SaParams) -> int:
        return self.refuse("newkey", reason, KIND_UNSUPPORTED, _errno.EINVAL, p.spi)

    def check_params(self, p: SaParams, rx: bool) -> int:
        """The algorithm/protocol rules shared by the PF and ixgbevf."""
        if p.proto != IPPROTO_ESP:
            return self._no(f"Unsupported protocol {p.proto:#06x} for ipsec offload", p)
        if p.mode == _TUNNEL:
            # Linux has no "any" mode; an SA of FreeBSD's IPSEC_MODE_ANY runs
            # as transport here.
            return self._no("Only transport mode is supported", p)
        if p.alg_comp:
            return self._no("Compression offload not supported", p)
        if p.alg_enc != _GCM16:
            return self._no("Unsupported IPsec algorithm - please use rfc4106(gcm(aes))", p)
        if p.key_bits != 128:
            return self._no("IPsec hw offload only supports keys up to 128 bits with a 32 "
                            "bit salt", p)
        if p.esn:
            return self._no("ESN offload needs xdo_dev_state_advance_esn", p)
        if p.natt is not None:
            return self._no("UDP encapsulation is not offloaded", p)
        if p.state == 3:
            return self._no("SA is DEAD", p)
        if rx and p.dst in self.mgmt_ips:
            return self._no("IPsec IP addr clash with mgmt filters", p)
        return 0

    def sa_check(self, p: SaParams, direction: int) -> int:
        return self.check_params(p, direction != DIR_OUT)

    def sa_directions(self, p: SaParams, direction: int) -> tuple[int, ...] | int:
        dirs = super().sa_directions(p, direction)
        if isinstance(dirs, tuple) and DIR_OUT in dirs and self.vfs_not_vepa:
            return self.refuse("newkey", "Cannot offload TX with VFs present unless the "
                               "bridge is VEPA", KIND_UNSUPPORTED, _errno.EOPNOTSUPP, p.spi)
        return dirs

    # -- tables ------------------------------------------------------------------------

    def _rx_key(self, p: SaParams) -> tuple[Any, ...]:
        return (p.dst, p.spi) if self.spi_collision == "dst" else (p.spi,)

    def pf_add(self, e: HwSa, owner: Any) -> tuple[int, str, int]:
        """Program one entry for ``owner`` (the PF or a VF).  Returns
        (0, "", handle) or (errno, reason, kind-errno-free) -- errno ENOSPC or
        EEXIST with the reason text."""
        p = e.params
        e.owner = owner
        with self.ipsec_lock:
            if e.direction == DIR_OUT:
                idx = self.tx_table.alloc(e)
                if idx < 0:
                    return _errno.ENOSPC, "No space for SA in Tx table", -1
                e.table, e.index = self.tx_table, idx
                e.aux["handle"] = idx + IXGBE_IPSEC_BASE_TX_INDEX
                return 0, "", e.aux["handle"]
            key = self._rx_key(p)
            for other in self.rx_index.get(key, ()):
                if other.owner is not owner:
                    return _errno.EEXIST, (f"SPI {p.spi:#x} already programmed for "
                                           f"{_owner_name(other.owner)}"), -1
            if self.rx_table.full:
                return _errno.ENOSPC, "No space for SA in Rx table!", -1
            # Reuse the RX IP slot of the same address, or take a free one.
            ipidx = -1
            for i, slot in self.rxip_table.slots.items():
                if slot.addr == p.dst:
                    ipidx = i
                    slot.refs += 1
                    break
            if ipidx < 0:
                ipidx = self.rxip_table.alloc(_RxIp(p.dst))
                if ipidx < 0:
                    return _errno.ENOSPC, "No space for SA in Rx IP SA table", -1
            idx = self.rx_table.alloc(e)
            e.table, e.index = self.rx_table, idx
            e.aux["ipidx"] = ipidx
            e.aux["handle"] = idx
            self.rx_index[key] = self.rx_index.get(key, []) + [e]
            return 0, "", idx

    def pf_del(self, e: HwSa) -> bool:
        """Remove one entry if it is still programmed; False if a reset (or
        anything else) already cleared it."""
        with self.ipsec_lock:
            return self._pf_del_locked(e)

    def _pf_del_locked(self, e: HwSa) -> bool:
        t = e.table
        if t is None or t.get(e.index) is not e:
            e.table, e.index = None, -1
            return False
        t.free(e.index)
        if t is self.rx_table:
            ipidx = e.aux.get("ipidx", -1)
            slot = self.rxip_table.get(ipidx)
            if slot is not None:
                slot.refs -= 1
                if slot.refs <= 0:
                    self.rxip_table.free(ipidx)
            key = self._rx_key(e.params)
            lst = [x for x in self.rx_index.get(key, ()) if x is not e]
            if lst:
                self.rx_index[key] = lst
            else:
                self.rx_index.pop(key, None)
        e.table, e.index = None, -1
        return True

    def hw_alloc(self, e: HwSa) -> int:
        err, reason, _ = self.pf_add(e, self)
        if err == _errno.EEXIST:
            return self.refuse("newkey", reason, KIND_COLLISION, err, e.params.spi)
        if err:
            return self.refuse("newkey", reason, KIND_RESOURCE, err, e.params.spi)
        return 0

    def hw_free(self, e: HwSa) -> None:
        self.pf_del(e)

    # -- VF mailbox messages (served on the mailbox thread) ---------------------------

    def vf_message(self, vf: Any, msg: dict[str, Any]) -> tuple[int, Any]:
        """ixgbe_ipsec_vf_add_sa / ixgbe_ipsec_vf_del_sa: (errno, pfsa or text)."""
        vf_id = vf.vf_id
        op = msg["op"]
        if op == IXGBE_VF_IPSEC_ADD:
            if not (self.vf_ipsec and self.vf_trust.get(vf_id, False)):
                return _errno.EACCES, "VF not trusted or vf-ipsec off"
            e: HwSa = msg["entry"]
            if e.direction != DIR_IN:
                return _errno.EOPNOTSUPP, "Cannot offload Tx SA for VF"
            err, reason, pfsa = self.pf_add(e, vf)
            if err:
                return err, reason
            e.aux["vf"] = vf_id
            return 0, pfsa
        if op == IXGBE_VF_IPSEC_DEL:
            if not self.vf_trust.get(vf_id, False):
                return _errno.EPERM, "VF not trusted"
            pfsa = int(msg["pfsa"])
            if not 0 <= pfsa < self.rx_table.capacity:  # type: ignore[operator]
                return _errno.EINVAL, f"bad pfsa {pfsa}"
            with self.ipsec_lock:
                cur = self.rx_table.get(pfsa)
                if cur is None:
                    return 0, "already cleared"       # a PF reset got there first
                if cur.owner is not vf:
                    return _errno.ENOENT, f"pfsa {pfsa} owned by another function"
                self._pf_del_locked(cur)
            return 0, None
        return _errno.EINVAL, f"unknown message {op}"

    # -- reset -----------------------------------------------------------------------

    def reset(self) -> int:
        """A PF reset: reprogram the PF's entries from the shadow tables,
        silently drop every VF-owned entry.  Returns how many were dropped."""
        dropped = 0
        with self.ipsec_lock:
            for t in (self.rx_table, self.tx_table):
                for e in list(t.slots.values()):
                    if e.owner is not self:
                        e.live = False
                        self._pf_del_locked(e)
                        dropped += 1
            self.resets += 1
        return dropped

    def vf_gone(self, vf: Any) -> int:
        """A VF went away: clear what it owned."""
        n = 0
        with self.ipsec_lock:
            for t in (self.rx_table, self.tx_table):
                for e in list(t.slots.values()):
                    if e.owner is vf:
                        e.live = False
                        self._pf_del_locked(e)
                        n += 1
        return n

    def shutdown(self) -> None:
        super().shutdown()
        if self._mailbox is not None:
            self._mailbox.stop()

    def detach(self) -> None:
        if self._mailbox is not None:
            self._mailbox.stop()
        super().detach()


def _addr(a: Any) -> bytes:
    if isinstance(a, (bytes, bytearray)):
        return bytes(a)
    import ipaddress
    return ipaddress.ip_address(str(a)).packed


def _owner_name(owner: Any) -> str:
    name = getattr(owner, "name", None)
    return str(name) if name is not None else repr(owner)
