"""Interface cloners: ``sys/net/if_clone.c`` / ``if_clone.h`` (``struct
if_clone``, ``ifc_alloc_unit``/``ifc_free_unit``, ``ifc_name2unit``) and
the loopback cloner of ``sys/net/if_loop.c`` (``lo_clone_create``/
``lo_clone_destroy``).

A cloner owns a name prefix and a unit allocator (unr(9)); ``ifconfig X
create``/``destroy`` reach it through :meth:`IfnetRegistry.if_clone_create
<ipsec_accel.ifnet_registry.IfnetRegistry.if_clone_create>` and
``if_clone_destroy``.  The vlan cloner lives with vlan(4) in
:mod:`ipsec_accel.if_vlan` and uses :func:`_prefix_unit_match` and
:func:`_name2unit` from here.

Why a module of its own: cloners are their own file in FreeBSD and were a
separate concept inside an oversized ``ifnet.py``.  :mod:`ipsec_accel.ifnet`
still re-exports every name here (loaded on first use, see the end of that
module), so ``from ipsec_accel.ifnet import IfClone`` keeps working.
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any, Callable

from .ifnet import (
    IF_MAXUNIT, IFCAP_HWCSUM, IFCAP_HWCSUM_IPV6, IFCAP_LINKSTATE, IFF_LOOPBACK, IFF_MULTICAST,
    IFT_LOOP, Ifnet,
)
from .unr import UnrAllocator

if TYPE_CHECKING:
    # Annotations only: the registry imports this module.
    from .ifnet_registry import IfnetRegistry

__all__ = ["IfClone", "CloneCreateFn", "CloneDestroyFn"]

# (registry, cloner, requested name, params) -> (errno, new ifnet); the
# registry is passed in because the model has one per vnet.
CloneCreateFn = Callable[["IfnetRegistry", "IfClone", str, Any], "tuple[int, Ifnet | None]"]
CloneDestroyFn = Callable[["IfnetRegistry", "IfClone", Ifnet], int]


class IfClone:
    """``struct if_clone``: names ``<prefix><unit>`` (or whatever ``match``
    accepts), units from an unr allocator (``ifc_alloc_unit``)."""

    def __init__(self, name: str, create: CloneCreateFn, destroy: CloneDestroyFn,
                 match: Callable[[IfnetRegistry, str], bool] | None = None,
                 maxunit: int = IF_MAXUNIT) -> None:
        self.name = name
        self.create = create
        self.destroy = destroy
        self._match = match
        self.units = UnrAllocator(0, maxunit)

    def match(self, reg: IfnetRegistry, ifname: str) -> bool:
        if self._match is not None:
            return self._match(reg, ifname)
        return _prefix_unit_match(self.name, ifname)

    def alloc_unit(self, unit: int) -> tuple[int, int]:
        """``ifc_alloc_unit``: unit -1 = lowest free; a busy unit -> EEXIST."""
        if unit < 0:
            u = self.units.alloc_unr()
            return (errno.ENOSPC, -1) if u < 0 else (0, u)
        if unit > self.units.high:
            return errno.EINVAL, -1
        return (0, unit) if self.units.alloc_unr_specific(unit) == unit else (errno.EEXIST, -1)

    def free_unit(self, unit: int) -> None:
        if unit >= 0 and self.units.is_allocated(unit):
            self.units.free_unr(unit)


def _prefix_unit_match(prefix: str, ifname: str) -> bool:
    """``ifc_simple_match``: ``<prefix>`` alone (any unit) or followed by
    digits."""
    if not ifname.startswith(prefix):
        return False
    return ifname[len(prefix):].isdigit() or ifname == prefix


def _name2unit(ifname: str, prefix: str) -> int:
    """``ifc_name2unit``: -1 for the wildcard (no digits)."""
    rest = ifname[len(prefix):]
    return int(rest) if rest else -1


def _lo_clone_create(reg: IfnetRegistry, ifc: IfClone, name: str,
                     params: Any) -> tuple[int, Ifnet | None]:
    """``lo_clone_create`` (if_loop.c): ``lo`` or ``loN``."""
    err, unit = ifc.alloc_unit(_name2unit(name, "lo"))
    if err:
        return err, None
    ifp = Ifnet(f"lo{unit}", type=IFT_LOOP, mtu=16384, max_mtu=16384,
                flags=IFF_LOOPBACK | IFF_MULTICAST,
                capabilities=IFCAP_HWCSUM | IFCAP_HWCSUM_IPV6 | IFCAP_LINKSTATE)
    ifp.if_clone = ifc
    reg.if_attach(ifp)
    return 0, ifp


def _lo_clone_destroy(reg: IfnetRegistry, ifc: IfClone, ifp: Ifnet) -> int:
    reg.if_detach(ifp)
    reg.if_free(ifp)
    ifc.free_unit(ifp.if_dunit)
    return 0
