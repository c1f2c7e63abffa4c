"""A netdevsim-like NIC: Linux ``drivers/net/netdevsim/ipsec.c`` +
``netdevsim.h`` (linux_xfrm_offload.md §4, profile P1 of §10), the golden
reference the kernel's own selftests use (``rtnetlink.sh``
``kci_test_ipsec_offload``, ``bond_ipsec_offload.sh``).

* **33 slots shared by RX and TX** (``NSIM_IPSEC_MAX_SA_COUNT``), first free
  index first; handle = index | BIT(31) (``NSIM_IPSEC_VALID``) so it is never
  0.  A full table: **ENOSPC** "No space for SA in Rx table!" (both styles;
  an "other error" for FreeBSD's infrastructure).
* **Validation**: ESP or AH (AH is refused here: the xfrm core never offloads
  it and the engine cannot run it); no compression; AEAD
  "rfc4106(gcm(aes))" with ICV 128 only (AES-GCM-16); key 128 bits + salt;
  no ESN (netdevsim has no ``advance_esn``, the core refuses).  Linux says
  EINVAL for each; on FreeBSD's KPI the default style says EOPNOTSUPP.
  Mode and family are not checked (tunnel mode is accepted).
  ``truncate_key_quirk=True`` reproduces netdevsim accepting a key longer
  than 128 bits, keeping its first 16 bytes and taking the "salt" from
  bytes 16..19 -- a card programmed that way produces ciphertext nobody can
  open, which is exactly what the quirk means.
* **Direction**: Linux gives it (one slot per xfrm state).  A direction-less
  FreeBSD install takes two slots, rx then tx; with the "sa_direction"
  extension one.
* **TX check** (``nsim_ipsec_tx``): a packet naming a handle not in the
  table is dropped; every offloaded packet counts in ``tx``.
* **debugfs** ``ipsec`` file (:meth:`NetdevsimNic.debugfs_ipsec`): ``SA
  count=<n> tx=<tx>`` then three lines per used slot, either the classic
  format (raw 32-bit words printed host-endian on little-endian x86: the
  address only for RX slots, ``0x%08x %08x %08x %08x``) or the ≥ 6.13 one
  (dotted IPv4 / compressed IPv6, for both directions).
* No policy ops, no ``free``.  Offload mode: crypto (netdevsim never
  touches packets; the model's card really encrypts).
"""

from __future__ import annotations

import errno as _errno
import ipaddress
import logging
import struct
from typing import Any, ClassVar, Final, Optional

from pfkey.pfkeyv2 import SADB_AALG, SADB_EALG

from .base import MockNic
from .hw import (
    DIR_IN, IPPROTO_AH, IPPROTO_ESP, KIND_RESOURCE, KIND_UNSUPPORTED, MODE_CRYPTO, HwSa,
    SaParams,
)

__all__ = ["NetdevsimNic", "NSIM_IPSEC_MAX_SA_COUNT", "NSIM_IPSEC_VALID",
           "NSIM_IPSEC_AUTH_BITS"]

log = logging.getLogger("drivers.netdevsim")

NSIM_IPSEC_MAX_SA_COUNT: Final = 33
NSIM_IPSEC_VALID: Final = 1 << 31
NSIM_IPSEC_AUTH_BITS: Final = 128

_GCM16: Final = int(SADB_EALG.X_AESGCM16)
_LE4 = struct.Struct("<4I")
_LE1 = struct.Struct("<I")


class NetdevsimNic(MockNic):
    """netdevsim port with IPsec (module docstring).  Options:
    ``capacity`` (33), ``truncate_key_quirk``."""

    profile: ClassVar[str] = "netdevsim"
    dname: ClassVar[str] = "nsim"
    default_modes: ClassVar[tuple[str, ...]] = (MODE_CRYPTO,)
    default_capacity: ClassVar[Optional[int]] = NSIM_IPSEC_MAX_SA_COUNT

    def __init__(self, name: Optional[str] = None, *, truncate_key_quirk: bool = False,
                 **kw: Any) -> None:
        super().__init__(name, **kw)
        self.truncate_key_quirk = truncate_key_quirk
        self.ok = 0        # calls of the old xdo_dev_offload_ok (not used by the model)

    # -- validation ----------------------------------------------------------------------

    def _no(self, reason: str, p: SaParams) -> int:
        return self.refuse("newkey", reason, KIND_UNSUPPORTED, _errno.EINVAL, p.spi)

    def sa_check(self, p: SaParams, direction: int) -> int:
        if p.proto not in (IPPROTO_ESP, IPPROTO_AH):
            return self._no(f"Unsupported protocol {p.proto:#06x} for ipsec offload", p)
        if p.proto == IPPROTO_AH:
            return self._no("AH: no ESP type_offload for the family (core)", p)
        if p.alg_comp:
            return self._no("Compression offload not supported", p)
        if p.alg_enc != _GCM16:
            return self._no("Unsupported IPsec algorithm - please use rfc4106(gcm(aes))", p)
        if p.key_bits < NSIM_IPSEC_AUTH_BITS:
            return self._no("IPsec hw offload only supports 128 bit keys with optional 32 "
                            "bit salt", p)
        if p.key_bits > NSIM_IPSEC_AUTH_BITS and not self.truncate_key_quirk:
            return self._no("IPsec hw offload only supports 128 bit keys with optional 32 "
                            "bit salt", p)
        if p.esn:
            return self._no("ESN needs xdo_dev_state_advance_esn (core)", p)
        if p.state == 3:
            return self._no("SA is DEAD", p)
        return 0

    def make_entry(self, direction: int, drv_spi: int, p: SaParams, sav: Any, ifpo: Any,
                   vid: int) -> HwSa:
        e = super().make_entry(direction, drv_spi, p, sav, ifpo, vid)
        if p.key_bits > NSIM_IPSEC_AUTH_BITS:
            # nsim_ipsec_parse_proto_keys: key = the first 16 bytes, salt =
            # the 32-bit word at offset 16 -- inside a longer key.
            hwkey = p.enc_key[:16] + p.enc_key[16:20]
            e.params = p._replace(enc_key=hwkey, alg_auth=int(SADB_AALG.X_AES128GMAC))
        key = e.params.enc_key
        e.aux["key"] = _LE4.unpack(key[:16])
        e.aux["salt"] = _LE1.unpack(key[16:20])[0] if len(key) >= 20 else 0
        return e

    def hw_alloc(self, e: HwSa) -> int:
        t = self.sa_table
        with t.lock:
            idx = t.alloc(e)
        if idx < 0:
            return self.refuse("newkey", "No space for SA in Rx table!", KIND_RESOURCE,
                               _errno.ENOSPC, e.params.spi)
        e.table, e.index = t, idx
        e.aux["handle"] = idx | NSIM_IPSEC_VALID
        return 0

    # -- state ---------------------------------------------------------------------------

    @property
    def count(self) -> int:
        return self.sa_table.count

    @property
    def tx(self) -> int:
        """Packets that went through ``nsim_ipsec_tx`` with an SA."""
        with self._cnt_lock:
            return self.counters["tx_encrypted"] + self.counters["tx_crypto"]

    def debugfs_ipsec(self, style: str = "hex") -> str:
        """The ``ipsec`` debugfs file.  ``style="hex"``: the classic format
        (address words host-endian, RX slots only); ``"dotted"``: ≥ 6.13."""
        if style not in ("hex", "dotted"):
            raise ValueError("style must be 'hex' or 'dotted'")
        t = self.sa_table
        with t.lock:
            slots = sorted(t.slots.items())
        lines = [f"SA count={len(slots)} tx={self.tx}"]
        for i, e in slots:
            p = e.params
            rx = e.direction == DIR_IN
            if style == "hex":
                words = [0, 0, 0, 0]
                if rx:
                    raw = p.dst if len(p.dst) == 16 else bytes(12) + p.dst
                    words = list(_LE4.unpack(raw))
                addr = "0x%08x %08x %08x %08x" % tuple(words)
            else:
                addr = str(ipaddress.ip_address(p.dst)) if p.dst else "0.0.0.0"
            k = e.aux["key"]
            lines.append(f"sa[{i}] {'rx' if rx else 'tx'} ipaddr={addr}")
            lines.append(f"sa[{i}]    spi=0x{p.spi:08x} proto=0x{p.proto:x} "
                         f"salt=0x{e.aux['salt']:08x} crypt=1")
            lines.append(f"sa[{i}]    key=0x{k[0]:08x} {k[1]:08x} {k[2]:08x} {k[3]:08x}")
        return "\n".join(lines) + "\n"

    def detach(self) -> None:
        if self.count:
            log.error("%s: tearing down IPsec offload with %d SAs left", self.name,
                      self.count)
        super().detach()
