"""The anti-replay window: FreeBSD's ``struct secreplay`` (``sys/netipsec/keydb.h``)
and the ``ipsec.c`` functions that check and advance it.

Rules modelled (RFC 4303 §3.4.3 / Appendix A with RFC 6479 32-bit blocks),
exactly as ipsec.c ``ipsec_chkreplay`` / ``ipsec_updatereplay`` (2024):

* window = ``wsize`` * 8 packets (``wsize`` is ``sadb_sa_replay``, in bytes);
  bitmap of ``next_pow2(wsize + 4) / 4`` blocks: the one redundant block
  (RFC 6479) lets the window advance by clearing whole blocks;
* ``ipsec_chkreplay`` runs before the ICV and only reads the window: it
  returns the inferred high 32 bits of the sequence number (ESN high half per
  Appendix A2.2), -1 for a replay, -2 for a wrap;
* ``ipsec_updatereplay`` runs after the ICV and marks the number (and counts
  it in ``replay->count``, as FreeBSD does);
* without ESN a wrapped sequence is refused unless SADB_X_EXT_CYCSEQ
  (esps_wrap).

Split out of :mod:`ipsec_accel.xform_esp` because the window is ipsec.c's, not
xform_esp.c's (AH uses it too) and is the one piece with arithmetic of its
own.  :class:`IpsecReplay` holds the functions as methods that
:class:`ipsec_accel.xform_esp.EspState` inherits: FreeBSD passes the
``secasvar`` to them, and as inherited methods they cost the ESP input path
no extra call (the inlined AEAD input calls ``self.ipsec_chkreplay``
directly).  Callers hold the SA's lock (FreeBSD's SECREPLAY lock); nothing
here locks.
"""

from __future__ import annotations

import itertools
from typing import Final

M32: Final = 0xFFFFFFFF
M64: Final = 0xFFFFFFFFFFFFFFFF


class SecReplay:
    """``struct secreplay``: window size in bytes, RFC 6479 bitmap of 32-bit
    blocks, the highest sequence seen (64-bit ``last``) and the overflow count.
    The 64-bit packet counter lives in the EspState (``count``)."""

    __slots__ = ("wsize", "bitmap_size", "bitmap", "last", "overflow")

    def __init__(self, wsize: int) -> None:
        self.wsize = wsize
        bs = 0
        if wsize:
            # key_setsaval: a power of two of bytes >= wsize + 4, i.e. one
            # redundant 32-bit block (RFC 6479), counted in blocks.
            bs = 1
            while wsize + 4 > bs:
                bs <<= 1
            bs //= 4
        self.bitmap_size = bs
        self.bitmap = [0] * bs
        self.last = 0
        self.overflow = 0

    @property
    def window(self) -> int:
        """Window size in packets."""
        return self.wsize << 3


class IpsecReplay:
    """ipsec.c's replay functions, as methods of the SA they take.

    A base class of :class:`ipsec_accel.xform_esp.EspState`, which owns the
    slots declared here: the window (``replay``), the ESN and CYCSEQ flags
    and the 64-bit ``replay->count`` (an ``itertools.count``, the next value).
    """

    __slots__ = ()

    replay: SecReplay
    esn: bool
    cycseq: bool
    _seqgen: itertools.count[int]

    def ipsec_chkreplay(self, seq: int) -> int:
        """Pre-ICV replay check.  Returns the inferred high 32 bits of the
        sequence number (>= 0), -1 to drop as a replay, -2 to drop as a wrap."""
        r = self.replay
        if r.wsize == 0:
            return 0
        last = r.last
        if seq == 0 and last == 0:
            return -1
        window = r.wsize << 3
        tl = last & M32
        th = last >> 32
        bl = (tl - window + 1) & M32
        case_a = tl >= window - 1
        if (case_a and seq >= bl) or (not case_a and seq < bl):
            if seq <= tl and (r.bitmap[(seq >> 5) & (r.bitmap_size - 1)] >> (seq & 31)) & 1:
                return -1
            return th
        if tl == M32 and not self.esn:
            r.overflow += 1
            if not self.cycseq:
                return -2
        if not case_a and seq >= bl:
            # Inside the window but in the previous subspace.
            if th == 0:
                return -1
            if (r.bitmap[(seq >> 5) & (r.bitmap_size - 1)] >> (seq & 31)) & 1:
                return -1
            return th - 1
        seqh = (th + 1) & M32
        if seqh == 0:
            r.overflow += 1
            if not self.cycseq:
                return -2
        return seqh

    def ipsec_updatereplay(self, seq: int) -> bool:
        """Post-ICV window update; True means drop (FreeBSD returns 1)."""
        r = self.replay
        if r.wsize == 0:
            return False
        last = r.last
        if seq == 0 and last == 0:
            return True
        window = r.wsize << 3
        tl = last & M32
        th = last >> 32
        bl = (tl - window + 1) & M32
        bsmask = r.bitmap_size - 1
        bm = r.bitmap
        case_a = tl >= window - 1
        if (case_a and seq >= bl) or (not case_a and seq < bl):
            idx = (seq >> 5) & bsmask
            if seq <= tl:
                if (bm[idx] >> (seq & 31)) & 1:
                    return True
            elif (seq >> 5) == (tl >> 5):
                r.last = (th << 32) | seq           # same block: nothing to clear
            else:
                self._advance_window((th << 32) | seq)
            bm[idx] |= 1 << (seq & 31)
            next(self._seqgen)
            return False
        if not self.esn:
            return True
        if not case_a and seq >= bl:
            if th == 0:
                return True
            idx = (seq >> 5) & bsmask
            if (bm[idx] >> (seq & 31)) & 1:
                return True
            bm[idx] |= 1 << (seq & 31)
            next(self._seqgen)
            return False
        seqh = (th + 1) & M32
        if seqh == 0:
            return True
        self._advance_window((seqh << 32) | seq)
        bm[(seq >> 5) & bsmask] |= 1 << (seq & 31)
        next(self._seqgen)
        return False

    def _advance_window(self, seq64: int) -> None:
        """advance_window: clear the blocks between the old top and the new one,
        then make ``seq64`` the top of the window."""
        r = self.replay
        index_cur = r.last >> 5
        diff = ((seq64 >> 5) - index_cur) & M64
        bs = r.bitmap_size
        if diff > bs:
            diff = bs
        bm = r.bitmap
        for i in range(diff):
            bm[(i + index_cur + 1) & (bs - 1)] = 0
        r.last = seq64

    def _seqh_seen(self, seq: int) -> int:
        """The high half the window places ``seq`` in, for reporting the 64-bit
        number of an ESN SA without an ICV (FreeBSD infers none there: the
        high half only matters for the ICV).  Call after the window update."""
        last = self.replay.last
        th = last >> 32
        tl = last & M32
        # An accepted number above the top can only be the previous subspace's
        # tail (case B of RFC 4303 A2.2): a higher one would be the new top.
        if seq > tl and th and tl < (self.replay.wsize << 3) - 1:
            return th - 1
        return th


__all__ = ["SecReplay", "IpsecReplay"]
