"""PF_KEY v2 extensions: one immutable value class per ``struct sadb_*``.

Layouts follow FreeBSD's ``sys/net/pfkeyv2.h`` (reference
pfkey_setkey_reference.md §A.4-§A.5, freebsd_ipsec_offload.md §11):

* every extension starts with ``u16 len`` (64-bit units, header included) and
  ``u16 exttype``; everything is padded to 8 bytes;
* fields are in host byte order -- this model is an amd64 FreeBSD, so host order
  is little-endian on every platform we run on -- except ``sadb_sa_spi``, the
  NAT-T port and the contents of sockaddrs, which are in network order (the SPI
  is held here as the integer value, encoded big-endian);
* sockaddrs are BSD-style (``sa_len`` first) and kept as raw bytes in
  :class:`Sockaddr` so any family and any length round-trips exactly.

``EXT_CLASSES[exttype]`` is the codec registry used by ``pfkey.message``
(hyperframe-style: the wire number indexes the class).  Each class has
``pack() -> bytes`` (the whole extension) and ``unpack(exttype, buf, off, len)``.
Decoding never raises anything but ``PfkeyError``; encoding raises
``EncodeError`` for values that do not fit the wire.

The value classes are ``typing.NamedTuple``s rather than ``attrs.frozen``
classes: equally immutable and typed, but built in one C call (0.1 us against
0.6 us for a six-field attrs class on the reference machine), which is what
lets ``decode`` validate a nine-extension SADB_ADD at over 100,000 per second.
``@_value`` makes equality type-aware (a SadbSa never equals a SadbSpirange
holding the same numbers) and adds ``replace``.

This module is the one entry point: it re-exports every value class and
holds what ties them together -- the :class:`Extension` protocol, the
``EXT_CLASSES`` registry with key.c's size tables, and :class:`RawExtension`
for what the registry refuses.  The classes live by concept:

* :mod:`pfkey.sockaddr`: :class:`Sockaddr` (and ``IPAddress``);
* :mod:`pfkey.ext_fixed`: the fixed-size extensions (``sadb_sa``,
  ``sadb_lifetime``, ``sadb_spirange``, ``sadb_x_sa2``, NAT-T, replay,
  ``sadb_x_if_hw_offl``);
* :mod:`pfkey.ext_var`: the variable-size ones (address, key, ident, sens,
  proposal, supported);
* :mod:`pfkey.ext_policy`: ``sadb_x_policy`` with its ``sadb_x_ipsecrequest`` list;
* :mod:`pfkey.ext_codec`: the helpers they share (``_value``, alignment,
  length units).
"""

from __future__ import annotations

import struct
from typing import NamedTuple, Optional, Protocol, Union

from .ext_codec import _pad8, _units
from .ext_codec import _value as _value  # re-exported: pfkey.message decorates Message with it
from .ext_fixed import (
    SadbLifetime, SadbSa, SadbSpirange, SadbXIfHwOffl, SadbXNatTFrag, SadbXNatTPort,
    SadbXNatTType, SadbXSa2, SadbXSaReplay,
)
from .ext_policy import IpsecRequest, SadbXPolicy
from .ext_var import (
    SadbAddress, SadbAlg, SadbComb, SadbIdent, SadbKey, SadbProp, SadbSens, SadbSupported,
)
from .sockaddr import IPAddress, Sockaddr

_HDR = struct.Struct("<HH")


# ---------------------------------------------------------------------------
# Extension protocol
# ---------------------------------------------------------------------------

class Extension(Protocol):
    """What every extension value class offers.

    ``exttype`` is either a class constant (one struct, one type) or a field
    (one struct shared by several types: lifetimes, addresses, keys ...).
    """

    @property
    def exttype(self) -> int: ...

    def pack(self) -> bytes: ...


class ExtensionClass(Protocol):
    """What ``EXT_CLASSES`` holds: a value class, used through its class
    constant ``ALLOWED_TYPES`` and its classmethod ``unpack``."""

    @property
    def ALLOWED_TYPES(self) -> frozenset[int]: ...

    def unpack(self, exttype: int, buf: bytes, off: int, extlen: int) -> ExtensionT: ...


@_value
class RawExtension(NamedTuple):
    """An extension of any type kept as raw payload bytes.

    The kernel-side decoder never produces one (key_align rejects unknown
    types); it exists to *build* messages FreeBSD would refuse (KMPRIVATE, type
    0, types above 31, lying lengths) for tests and fuzzing.  ``length_units``
    overrides the ``len`` field when set.
    """

    exttype: int
    payload: bytes = b""
    length_units: Optional[int] = None

    def pack(self) -> bytes:
        # sadb_ext is 4 bytes (len, type); the payload follows at offset 4.
        raw = _pad8(b"\0\0\0\0" + self.payload)
        units = _units(len(raw)) if self.length_units is None else self.length_units
        return _HDR.pack(units, self.exttype) + raw[4:]


# ---------------------------------------------------------------------------
# Registry: extension type -> class (key_typesw style)
# ---------------------------------------------------------------------------

ExtensionT = Union[SadbSa, SadbLifetime, SadbAddress, SadbKey, SadbIdent, SadbSens,
                   SadbProp, SadbSupported, SadbSpirange, SadbXPolicy, SadbXSa2,
                   SadbXNatTType, SadbXNatTPort, SadbXNatTFrag, SadbXSaReplay,
                   SadbXIfHwOffl, RawExtension]

EXT_CLASSES: list[Optional[ExtensionClass]] = [None] * 32
_cls: ExtensionClass
for _cls in (SadbSa, SadbLifetime, SadbAddress, SadbKey, SadbIdent, SadbSens, SadbProp,
             SadbSupported, SadbSpirange, SadbXPolicy, SadbXSa2, SadbXNatTType,
             SadbXNatTPort, SadbXNatTFrag, SadbXSaReplay, SadbXIfHwOffl):
    for _t in _cls.ALLOWED_TYPES:
        EXT_CLASSES[_t] = _cls
# X_KMPRIVATE (17) and RESERVED (0) stay None: key_align rejects them.

# key.c minsize[] / maxsize[] (0 = no maximum), indexed by extension type.
EXT_MINSIZE: tuple[int, ...] = (
    0, 16, 32, 32, 32, 8, 8, 8, 8, 8, 16, 16, 16, 8, 8, 8, 16, 8, 16, 16, 8, 8, 8,
    8, 8, 8, 8, 8, 8, 32, 32, 40)
EXT_MAXSIZE: tuple[int, ...] = (
    0, 16, 32, 32, 32, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16, 0, 0, 16, 8, 8, 8,
    0, 0, 8, 8, 0, 0, 32, 32, 40)

ADDRESS_TYPES: frozenset[int] = SadbAddress.ALLOWED_TYPES

__all__ = [
    "Sockaddr", "Extension", "ExtensionClass", "SadbSa", "SadbLifetime", "SadbSpirange", "SadbXSa2",
    "SadbXNatTType", "SadbXNatTPort", "SadbXNatTFrag", "SadbXSaReplay", "SadbXIfHwOffl",
    "SadbAddress", "SadbKey", "SadbIdent", "SadbSens", "SadbComb", "SadbProp", "SadbAlg",
    "SadbSupported", "IpsecRequest", "SadbXPolicy", "RawExtension", "ExtensionT",
    "EXT_CLASSES", "EXT_MINSIZE", "EXT_MAXSIZE", "ADDRESS_TYPES", "IPAddress",
]
