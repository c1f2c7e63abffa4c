"""A Chelsio-T6-like NIC: Linux ``drivers/net/ethernet/chelsio/inline_crypto/
ch_ipsec/chcr_ipsec.c`` over cxgb4's ULD interface (linux_xfrm_offload.md
§7, profile P5 of §10).

* **TX only.**  The card builds a work request carrying the key context for
  every outgoing packet; there is no RX decrypt hook.  So the driver needs
  the SA's direction, which FreeBSD's KPI never gives: with the offload
  layer's "sa_direction" extension an OUTBOUND SA is installed (a key
  context in host memory: **no table, no capacity limit**), an INBOUND SA is
  accepted without hardware state (Linux: "accepted but decrypted in
  software"; its packets reach the stack untouched), and a direction-less
  ``if_sa_newkey`` is refused with **EOPNOTSUPP** (REJECTED: software).
* **Validation** (Linux EINVAL; EOPNOTSUPP in the default FreeBSD style):
  ESP only; no compression; no UDP encapsulation; no TFC padding; AEAD
  AES-GCM with ICV 96 or 128 (FreeBSD's SADB has only AES-GCM-16) and a
  128- or 256-bit key; transport and tunnel mode; ESN supported (the stack
  passes the high half with each crypto-offload packet).
* **ULD wrapper failures**: the ULD mutex held by someone else ->
  **EBUSY** ("crypto uld critical resource is under use"), a transient hard
  error the infrastructure does not retry (nothing recorded); hold
  ``nic.uld_lock`` in a test to create the contention.  The ULD module not
  loaded (``uld_loaded=False``) -> **EOPNOTSUPP** (software fallback) in both
  styles -- the case the profile exists to tell apart from EBUSY.
* Offload mode: crypto (the stack frames ESP, the card encrypts).
"""

from __future__ import annotations

import errno as _errno
import threading
from typing import Any, ClassVar, Final, Optional

from pfkey.pfkeyv2 import SADB_EALG

from .base import MockNic
from .hw import (
    DIR_IN, DIR_OUT, DIR_UNKNOWN, IPPROTO_ESP, KIND_BUSY, KIND_UNSUPPORTED, MODE_CRYPTO,
    NicSa, SaParams,
)

__all__ = ["ChelsioNic"]

_GCM16: Final = int(SADB_EALG.X_AESGCM16)


class ChelsioNic(MockNic):
    """T6 inline TX crypto (module docstring).  Option: ``uld_loaded``."""

    profile: ClassVar[str] = "chelsio"
    dname: ClassVar[str] = "cc"
    default_modes: ClassVar[tuple[str, ...]] = (MODE_CRYPTO,)
    default_capacity: ClassVar[Optional[int]] = None

    def __init__(self, name: Optional[str] = None, *, uld_loaded: bool = True,
                 **kw: Any) -> None:
        super().__init__(name, **kw)
        self.uld_loaded = uld_loaded
        #: The ULD's critical-resource mutex (chcr_ipsec_add_sa try-locks it).
        self.uld_lock = threading.Lock()

    def sa_install(self, ifpo: Any, sav: Any, drv_spi: int,
                   direction: int) -> tuple[int, Optional[NicSa]]:
        if not self.uld_loaded:
            return self.refuse("newkey", "ULD not loaded", KIND_UNSUPPORTED,
                               _errno.EOPNOTSUPP, getattr(sav, "spi", 0)), None
        if not self.uld_lock.acquire(blocking=False):
            return self.refuse("newkey", "crypto uld critical resource is under use",
                               KIND_BUSY, _errno.EBUSY, getattr(sav, "spi", 0)), None
        try:
            return super().sa_install(ifpo, sav, drv_spi, direction)
        finally:
            self.uld_lock.release()

    def _no(self, reason: str, p: SaParams) -> int:
        return self.refuse("newkey", reason, KIND_UNSUPPORTED, _errno.EINVAL, p.spi)

    def sa_check(self, p: SaParams, direction: int) -> int:
        if p.proto != IPPROTO_ESP:
            return self._no("Cannot offload protocol other than ESP", p)
        if p.alg_comp:
            return self._no("Cannot offload compressed xfrm states", p)
        if p.natt is not None:
            return self._no("Cannot offload encapsulated xfrm states", p)
        if p.alg_enc != _GCM16:
            return self._no("Cannot offload xfrm states without aead", p)
        if p.key_bits not in (128, 256):
            return self._no("Unsupported key length", p)
        if p.state == 3:
            return self._no("SA is DEAD", p)
        return 0

    def sa_directions(self, p: SaParams, direction: int) -> tuple[int, ...] | int:
        if direction == DIR_UNKNOWN:
            return self.refuse("newkey", "TX-only offload needs the SA direction",
                               KIND_UNSUPPORTED, _errno.EOPNOTSUPP, p.spi)
        if direction == DIR_IN:
            return ()          # accepted; decrypted in software
        return (DIR_OUT,)
