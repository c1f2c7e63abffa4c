"""The ESP trailer: padding || pad length || next header (RFC 4303 §2.4-2.6),
as ``xform_esp.c`` ``esp_output`` writes it, precomputed.

The padding contents follow ``sadb_sa_flags & SADB_X_EXT_PMASK``: PSEQ
1, 2, 3 ... (the default, RFC 4303's self-describing padding), PZERO zeros,
PRAND random (``arc4random_buf``).  For PSEQ and PZERO a trailer depends only
on the padding mode, the pad block and (pad length, next header), so every
trailer is built once per (mode, block) and shared by all SAs: a list index
is the cheapest lookup on the output path.  PRAND SAs get an object that
builds each trailer from fresh random bytes.

Split out of :mod:`ipsec_accel.xform_esp`: these are process-wide tables with
their own lock, not per-SA state.  :func:`trailer_table` is what
:class:`ipsec_accel.xform_esp.EspState` indexes; :func:`residue_table` is the
same table re-indexed by the payload length, for the inlined AEAD output path
(``_EspAead.output``).
"""

from __future__ import annotations

import os
import threading
from typing import Final

from pfkey.pfkeyv2 import SADB_SAFLAGS

_EXT_PRAND: Final = int(SADB_SAFLAGS.X_EXT_PRAND)
_EXT_PZERO: Final = int(SADB_SAFLAGS.X_EXT_PZERO)


def _pad_bytes(pmask: int, n: int) -> bytes:
    if pmask == _EXT_PZERO:
        return bytes(n)
    return bytes(range(1, n + 1))        # PSEQ: self-describing 1, 2, 3 ...


class RandomTrailers:
    """The trailer "table" of a PRAND SA: fresh random padding every time
    (esp_output: arc4random_buf)."""

    __slots__ = ()

    def __getitem__(self, key: int) -> bytes:
        padlen = key >> 8
        return os.urandom(padlen) + bytes((padlen, key & 0xFF))


_RANDOM_TRAILERS: Final = RandomTrailers()
_TRAILER_TABLES: dict[tuple[int, int], list[bytes]] = {}
_TRAILER_LOCK = threading.Lock()


_RESIDUE_TABLES: dict[tuple[int, int], list[bytes]] = {}


def residue_table(pmask: int, blks: int) -> list[bytes]:
    """The trailer table re-indexed ``(rlen % blks) << 8 | next_header``: the
    padding depends only on the payload length modulo the block.  Empty for
    PRAND (those SAs never take the fast path)."""
    key = (pmask, blks)
    tbl = _RESIDUE_TABLES.get(key)
    if tbl is None:
        if pmask == _EXT_PRAND:
            tbl = []
        else:
            by_pad = trailer_table(pmask, blks)
            tbl = [by_pad[((-((i >> 8) + 2)) & (blks - 1)) << 8 | (i & 0xFF)]
                   for i in range(blks << 8)]
        _RESIDUE_TABLES[key] = tbl
    return tbl


def trailer_table(pmask: int, blks: int) -> list[bytes] | RandomTrailers:
    """Every trailer (padding || pad length || next header) for one padding
    mode and block, indexed ``padlen << 8 | next_header``; shared by all SAs
    (a list index is the cheapest lookup on the output path).  PRAND SAs get
    an object that builds each trailer with fresh random bytes."""
    if pmask == _EXT_PRAND:
        return _RANDOM_TRAILERS
    key = (pmask, blks)
    tbl = _TRAILER_TABLES.get(key)
    if tbl is None:
        with _TRAILER_LOCK:
            tbl = _TRAILER_TABLES.get(key)
            if tbl is None:
                tbl = [_pad_bytes(pmask, i >> 8) + bytes((i >> 8, i & 0xFF))
                       for i in range(blks << 8)]
                _TRAILER_TABLES[key] = tbl
    return tbl


__all__ = ["RandomTrailers", "trailer_table", "residue_table"]
