"""The offload hook seam of key.c: the ``ipsec_accel_*_p`` function pointers.

FreeBSD's key.c (always in the static kernel) owns a table of function
pointers that ipsec_offload.c fills when the offload infrastructure is loaded
and clears when it is unloaded; inline wrappers do nothing (or return a
default) while a pointer is NULL (freebsd_ipsec_offload.md §1, §5).

Here the table is an object: :class:`AccelHooks` has one method per hook,
named exactly as FreeBSD names the wrapper, and every method is a no-op that
returns what FreeBSD's wrapper returns when the pointer is NULL.  The offload
layer (``ipsec_accel``, built on top of ``pfkey``) subclasses it and installs
the instance with ``Key.set_accel_hooks()``; ``pfkey`` never imports
``ipsec_accel``.

Call points (key.c, reproduced by ``pfkey.key``):

* ``ipsec_accel_sa_newkey(sav)`` -- an SA became MATURE: inside key_newsav
  (ADD) *and* again in key_add after it returns (so twice per ADD; the
  offload layer makes the second call a no-op), and at the end of a
  successful key_update.
* ``ipsec_accel_forget_sav(sav)`` -- right after every ``state = DEAD``:
  key_unlinksav, key_delete_all, key_flush_sad (larval and hard expiry),
  key_flush, key_updateaddresses (the old SA of a clone).
* ``ipsec_accel_spdadd(sp, inp)`` -- key_insertsp and key_register_ifnet.
* ``ipsec_accel_spddel(sp)`` -- key_detach, key_spddelete (before key_unlink,
  so twice), key_spdflush, key_flush_spd, key_unregister_ifnet.
* ``ipsec_accel_sync()`` -- key_unlink, key_unregister_ifnet and SPDADD /
  SPDUPDATE replacing an old SP (SPD deletes are synchronous with the
  hardware; SA deletes and SPDFLUSH are not).
* ``ipsec_accel_is_accel_sav(sav)``, ``ipsec_accel_sa_lifetime_op(...)``,
  ``ipsec_accel_key_setaccelif(sav)`` -- key_setdumpsa (SADB_GET/DUMP) for
  the LFT_CUR_SW_OFFL / LFT_CUR_HW_OFFL / IF_HW_OFFL extensions.
* ``ipsec_accel_on_ifdown``, ``ipsec_accel_drv_sa_lifetime_update``,
  ``ipsec_accel_drv_sa_lifetime_fetch`` -- driver-callable helpers that key.c
  merely forwards.

Hooks are called with no key.c lock held *except* where FreeBSD holds one
(newkey under SAHTREE_WLOCK in key_newsav, forget under SAHTREE_WLOCK,
spdadd/spddel under SPTREE_WLOCK): an implementation must not call back into
the key engine synchronously from those hooks -- exactly FreeBSD's rule,
which is why ipsec_offload.c only enqueues tasks there.
"""

from __future__ import annotations

import errno as _errno
import enum
from typing import TYPE_CHECKING, Any, Optional

from .extensions import SadbXIfHwOffl

if TYPE_CHECKING:  # pragma: no cover
    from .keydb import secasvar, secpolicy, seclifetime


class IF_SA_CNT_WHICH(enum.IntEnum):
    """enum IF_SA_CNT_WHICH (sys/net/if_var.h): which counters lifetime_op reads."""

    IFP_HW_VAL = 1
    TOTAL_SW_VAL = 2
    TOTAL_HW_VAL = 3
    IFP_HW_UPD = 1 | 0x80000000
    TOTAL_SW_UPD = 2 | 0x80000000
    TOTAL_HW_UPD = 3 | 0x80000000


IF_SA_CNT_UPD = 0x80000000


class AccelHooks:
    """No-op defaults of the ``ipsec_accel_*_p`` hook table.

    Every method returns what key.c's inline wrapper returns when the hook
    pointer is NULL (offload infrastructure not loaded).
    """

    #: True once an offload layer has been attached (the pointers are set).
    attached: bool = False

    # -- SA hooks ------------------------------------------------------------

    def ipsec_accel_sa_newkey(self, sav: "secasvar") -> None:
        """An SA became MATURE (or was updated while MATURE/DYING)."""

    def ipsec_accel_forget_sav(self, sav: "secasvar") -> None:
        """The SA was just set DEAD and unlinked from the SAD."""

    def ipsec_accel_is_accel_sav(self, sav: "secasvar") -> bool:
        """The SA has at least one offload handle (HANDLED or REJECTED)."""
        return False

    def ipsec_accel_sa_lifetime_op(self, sav: "secasvar", lft_c: "seclifetime",
                                   ifp: Any, op: int,
                                   sahtree_tracker: Any = None) -> int:
        """Fill ``lft_c`` with offload counters; ``op`` is an IF_SA_CNT_WHICH.

        Returns 0 or an errno; FreeBSD's wrapper returns ENOTSUP without
        the infrastructure.
        """
        return _errno.EOPNOTSUPP

    def ipsec_accel_key_setaccelif(self, sav: "secasvar") -> list[SadbXIfHwOffl]:
        """The IF_HW_OFFL extensions of a dump (key_setaccelif per interface);
        an empty list means none is emitted."""
        return []

    # -- SP hooks ------------------------------------------------------------

    def ipsec_accel_spdadd(self, sp: "secpolicy", inp: Optional[Any] = None) -> None:
        """A policy was inserted into the SPD (or a PCB policy was set)."""

    def ipsec_accel_spddel(self, sp: "secpolicy") -> None:
        """A policy is leaving the SPD."""

    def ipsec_accel_sync(self) -> None:
        """Wait until every queued offload task has run (taskqueue_drain_all)."""

    # -- driver-callable helpers forwarded by key.c ----------------------------

    def ipsec_accel_on_ifdown(self, ifp: Any) -> None:
        """An interface went down or is departing: drop its handles."""

    def ipsec_accel_drv_sa_lifetime_update(self, sav: "secasvar", ifp: Any, drv_spi: int,
                                           octets: int, allocs: int) -> None:
        """A driver reports cumulative hardware counters for (sav, ifp, drv_spi)."""

    def ipsec_accel_drv_sa_lifetime_fetch(self, sav: "secasvar", ifp: Any,
                                          drv_spi: int) -> tuple[int, int, int]:
        """(errno, octets, allocs) last reported for a handle; EOPNOTSUPP when
        the infrastructure is absent (key.c's wrapper)."""
        return (_errno.EOPNOTSUPP, 0, 0)


#: The shared do-nothing instance a fresh kernel starts with.
NO_HOOKS = AccelHooks()

__all__ = ["AccelHooks", "NO_HOOKS", "IF_SA_CNT_WHICH", "IF_SA_CNT_UPD"]
