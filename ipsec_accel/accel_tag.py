"""How the stack tells an inline-IPsec NIC which hardware SA an outgoing
plaintext packet belongs to: the four *tag strategies* of issue 6 item 6, and
the one accessor every driver reads them through.

FreeBSD today (``ipsec_offload.c`` ``ipsec_accel_output_tag``) allocates a
``PACKET_TAG_IPSEC_ACCEL_OUT`` m_tag per packet (``struct
ipsec_accel_out_tag``: the m_tag header and a ``drv_spi``; m_tag_get asks for
``sizeof(*tag)``, header included, so 24 + 32 bytes come from the
``M_PACKET_TAGS`` malloc type).  The FreeBSD review asked whether per-packet
tags hurt small-packet workloads compared with a send tag allocated once per
interface and SA.  The strategies, selectable per host at run time
(:meth:`ipsec_accel.ipsec_state.Ipsec.set_tag_strategy`):

``mtag`` (:class:`MTagStrategy`)
    FreeBSD's: one ``PACKET_TAG_IPSEC_ACCEL_OUT`` tag per packet from the
    strategy's zone (freed by the driver's ``m_freem``).
``sndtag`` (:class:`SndTagStrategy`)
    A send tag (``struct m_snd_tag`` of the model-only type
    ``IF_SND_TAG_TYPE_IPSEC_ACCEL``, softc = the drv_spi) allocated once per
    (ifnet, SA) handle and referenced from the packet header
    (``m_set_snd_tag``: a reference per packet, ``CSUM_SND_TAG``; released by
    ``m_freem``).  The strategy keeps the handle's own reference until the
    handle goes (:meth:`TagStrategy.sweep`), so the tag holds an ``if_ref``
    like every send tag.
``outdone`` (:class:`OutDoneStrategy`)
    Reuse of the ``PACKET_TAG_IPSEC_OUT_DONE`` tag that ipsec_process_done
    attaches to every software-processed packet anyway: its xform_history
    grows a ``drv_spi`` (36 + 4 bytes).  Still one allocation per packet, but
    one tag serves both purposes.
``phfield`` (:class:`PhFieldStrategy`)
    A packet-header field (``m.ph_spare``) holds the drv_spi: no allocation.

Every strategy also carries IPSEC_ACCEL_DRV_SPI_BYPASS (2) for a policy of
level "use" without an SA (§8 step 2).

Drivers read the drv_spi with :func:`ipsec_accel_out_drv_spi` -- the one
accessor, whatever the strategy (it recognises all four, so hosts using
different strategies can share a wire and a benchmark compares strategies
through the same driver code).  ``drivers.engine`` calls it.

Memory is modelled honestly: each strategy instance owns UMA-like
:class:`ipsec_accel.mbuf.Zone` objects (``<host>.accel_out_tag``,
``<host>.accel_snd_tag``) whose ``allocs``/``frees``/``cur``/``peak`` counters
say how many allocations per packet a strategy costs (:meth:`TagStrategy.stats`).
The software path's ``PACKET_TAG_IPSEC_OUT_DONE`` / ``IN_DONE`` tags come
from the host's ``<host>.ipsec_tag`` zone (:attr:`TagStrategy.done_zone`), the
crypto-offload path's ``CRYPTO_NEEDED`` tags from ``<host>.crypto_tag``
(:attr:`TagStrategy.crypto_zone`): malloc(9) serves those sizes from two
different bucket zones.

Per packet: plain slotted objects, no attrs, the OUT_DONE payloads are
built once per SA / handle and shared by every packet.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Optional

from .ipsec_offload_defs import ifp_handle_sav
from .mbuf import (
    CSUM_SND_TAG, IF_SND_TAG_TYPE_IPSEC_ACCEL, MSNDTAG_SIZE, MTAG_HDR_SIZE,
    PACKET_TAG_IPSEC_ACCEL_OUT, PACKET_TAG_IPSEC_OUT_DONE, IfSndTagSw, Mbuf, MSndTag, MTag,
    Zone, m_set_snd_tag, m_snd_tag_alloc, m_snd_tag_rele, m_tag_attach, m_tag_find,
)

__all__ = [
    "TAG_MTAG", "TAG_SNDTAG", "TAG_OUTDONE", "TAG_PHFIELD", "TAG_STRATEGIES",
    "IPSEC_ACCEL_DRV_SPI_BYPASS", "ACCEL_OUT_TAG_LEN", "OUT_DONE_TAG_LEN",
    "OUT_DONE_ACCEL_TAG_LEN", "CRYPTO_NEEDED_TAG_LEN", "XFORM_HISTORY_LEN", "XformHistory", "ipsec_accel_out_drv_spi", "TagStrategy",
    "MTagStrategy", "SndTagStrategy", "OutDoneStrategy", "PhFieldStrategy",
    "make_tag_strategy", "IPSEC_SND_TAG_SW",
]

TAG_MTAG = "mtag"
TAG_SNDTAG = "sndtag"
TAG_OUTDONE = "outdone"
TAG_PHFIELD = "phfield"
#: Every strategy name, FreeBSD's first.
TAG_STRATEGIES = (TAG_MTAG, TAG_SNDTAG, TAG_OUTDONE, TAG_PHFIELD)

IPSEC_ACCEL_DRV_SPI_BYPASS = 2

#: m_tag_get's length for struct ipsec_accel_out_tag (header 24 + drv_spi,
#: padded: FreeBSD passes the whole struct size as the payload length).
ACCEL_OUT_TAG_LEN = MTAG_HDR_SIZE + 8
#: sizeof(struct xform_history): sockaddr_union 28, spi 4, proto 1, mode 1, pad 2
#: -- the payload of both IPSEC_OUT_DONE and IPSEC_IN_DONE tags.
XFORM_HISTORY_LEN = 36
OUT_DONE_TAG_LEN = XFORM_HISTORY_LEN
#: The ``outdone`` strategy's xform_history with a drv_spi appended.
OUT_DONE_ACCEL_TAG_LEN = OUT_DONE_TAG_LEN + 4
#: The crypto-offload CRYPTO_NEEDED tag's payload: the drv_spi (and, with
#: ESN, the sequence number's high bits), 8 bytes.
CRYPTO_NEEDED_TAG_LEN = 8

_ACCEL_OUT = PACKET_TAG_IPSEC_ACCEL_OUT
_OUT_DONE = PACKET_TAG_IPSEC_OUT_DONE
_BYPASS = IPSEC_ACCEL_DRV_SPI_BYPASS


class XformHistory:
    """``struct xform_history``, the payload of PACKET_TAG_IPSEC_OUT_DONE /
    IN_DONE tags (what IPsec did to the packet), plus the ``drv_spi`` the
    ``outdone`` strategy adds (None on software-processed packets).  Built
    once per SA (or handle) and shared, read-only, by every packet."""

    __slots__ = ("dst", "spi", "proto", "mode", "drv_spi")

    def __init__(self, dst: Any, spi: int, proto: int, mode: int,
                 drv_spi: Optional[int] = None) -> None:
        self.dst = dst
        self.spi = spi
        self.proto = proto
        self.mode = mode
        self.drv_spi = drv_spi

    def __repr__(self) -> str:
        return (f"<xform_history spi={self.spi:#x} proto={self.proto} mode={self.mode} "
                f"drv_spi={self.drv_spi}>")


def _as_drv_spi(x: Any) -> Optional[int]:
    """A drv_spi held as an int, a (drv_spi, seq_hi) tuple or an object with
    a ``drv_spi`` attribute (older test helpers hand such objects over)."""
    if isinstance(x, bool):
        return None
    if isinstance(x, int):
        return x
    if isinstance(x, tuple) and x:
        return int(x[0])
    v = getattr(x, "drv_spi", None)
    return int(v) if v is not None else None


def ipsec_accel_out_drv_spi(m: Mbuf) -> Optional[int]:
    """The drv_spi the stack attached to an outgoing packet, or None (send it
    as it is).  THE accessor drivers call, whatever the tag strategy:

    * a ``PACKET_TAG_IPSEC_ACCEL_OUT`` m_tag (``mtag``; data = drv_spi);
    * a ``PACKET_TAG_IPSEC_OUT_DONE`` tag whose xform_history has a drv_spi
      (``outdone``; software-processed packets carry None there);
    * a send tag of type ``IF_SND_TAG_TYPE_IPSEC_ACCEL`` (``sndtag``; softc =
      drv_spi);
    * ``m.ph_spare`` (``phfield``).
    """
    tags = m.tags
    if tags:
        for t in tags:
            tid = t.m_tag_id
            if tid == _ACCEL_OUT:
                if t.m_tag_cookie == 0:
                    d = t.data
                    return d if d.__class__ is int else _as_drv_spi(d)
            elif tid == _OUT_DONE and t.m_tag_cookie == 0:
                v = getattr(t.data, "drv_spi", None)
                if v is not None:
                    return int(v)
    if m.csum_flags & CSUM_SND_TAG:
        st = m.snd_tag
        if st is not None:
            sw = st.sw
            if sw is not None and sw.type == IF_SND_TAG_TYPE_IPSEC_ACCEL:
                d = st.softc
                return d if d.__class__ is int else _as_drv_spi(d)
    ph = m.ph_spare
    if ph is not None:
        return ph if ph.__class__ is int else _as_drv_spi(ph)
    return None


#: The switch of the model's IPsec send tags (nothing to free in a driver:
#: the tag is the whole state).
IPSEC_SND_TAG_SW = IfSndTagSw(IF_SND_TAG_TYPE_IPSEC_ACCEL)


class TagStrategy:
    """Base of the strategies.  ``name`` picks one; ``zone`` is where its
    per-packet tags come from (None for ``phfield``/``sndtag``);
    ``done_zone`` serves the software path's OUT_DONE / IN_DONE tags (one
    per host, whatever the strategy)."""

    name = ""
    #: Allocations one offloaded packet costs (0: none; the zones count them).
    per_packet_allocations = 0

    def __init__(self, host_name: str = "host", *, done_zone: Optional[Zone] = None,
                 crypto_zone: Optional[Zone] = None, tag_cache: int = 256) -> None:
        self.host_name = host_name
        self.zone: Optional[Zone] = None
        # m_tag_get is malloc(9), and malloc serves each size from its
        # power-of-two bucket, a UMA zone of its own: the IN_DONE / OUT_DONE
        # tags (header + xform_history, 60 bytes) come from malloc-64, the
        # crypto-offload CRYPTO_NEEDED tag (header + drv_spi, 32 bytes) from
        # malloc-32.  One zone per tag size also keeps every allocation on
        # the zones' lock-free fixed-size path.
        self.done_zone = done_zone if done_zone is not None else Zone(
            f"{host_name}.ipsec_tag", MTAG_HDR_SIZE + OUT_DONE_TAG_LEN, factory=MTag,
            cache=tag_cache)
        self.crypto_zone = crypto_zone if crypto_zone is not None else Zone(
            f"{host_name}.crypto_tag", MTAG_HDR_SIZE + CRYPTO_NEEDED_TAG_LEN, factory=MTag,
            cache=tag_cache)
        # Per-handle state (send tags, OUT_DONE payloads) and the bookkeeping
        # of when to look for stale entries (amortised: see sweep()).
        self._lock = threading.Lock()
        self._per_handle: dict[Any, Any] = {}
        self._sweep_at = 64
        self.live: Optional[Callable[[Any], bool]] = None

    # -- per packet ---------------------------------------------------------------

    def attach(self, m: Mbuf, ifp: Any, drv_spi: int, h: Any) -> bool:
        """Mark ``m`` for ``drv_spi`` (``h``: the ifp_handle_sav, None for
        BYPASS).  False when an M_NOWAIT allocation failed (the caller then
        processes the packet in software, as ipsec_accel_output does)."""
        raise NotImplementedError

    def read(self, m: Mbuf) -> Optional[int]:
        """This strategy's own reader (benchmarks measure it alone; drivers
        use :func:`ipsec_accel_out_drv_spi`)."""
        return ipsec_accel_out_drv_spi(m)

    # -- per handle ---------------------------------------------------------------

    def _per_handle_new(self, key: Any, build: Callable[[], Any]) -> Any:
        with self._lock:
            v = self._per_handle.get(key)
            if v is not None:
                return v
            if len(self._per_handle) >= self._sweep_at:
                self._sweep_locked()
                self._sweep_at = max(64, 2 * len(self._per_handle))
            v = build()
            if v is not None:
                self._per_handle[key] = v
            return v

    def _release(self, v: Any) -> None:
        """Give up the strategy's hold on a per-handle value."""

    def _stale(self, k: Any) -> bool:
        if isinstance(k, ifp_handle_sav):
            live = self.live
            return live is None or not live(k)
        # An ifnet (the BYPASS entries): gone once detached or freed.
        return bool(getattr(k, "freed", False)) or not getattr(k, "attached", True)

    def _sweep_locked(self) -> list[Any]:
        doomed = []
        for k in [k for k in self._per_handle if self._stale(k)]:
            doomed.append(self._per_handle.pop(k))
        return doomed

    def sweep(self) -> int:
        """Drop per-handle state of handles that are gone (``live(h)`` is
        False) and of detached interfaces; returns how many went."""
        with self._lock:
            doomed = self._sweep_locked()
        for v in doomed:
            self._release(v)
        return len(doomed)

    def forget_ifp(self, ifp: Any) -> int:
        """Drop every per-handle value bound to ``ifp`` (ifnet departure)."""
        with self._lock:
            keys = [k for k in self._per_handle
                    if k is ifp or getattr(k, "ifp", None) is ifp]
            doomed = [self._per_handle.pop(k) for k in keys]
        for v in doomed:
            self._release(v)
        return len(doomed)

    def flush(self) -> None:
        """Drop all per-handle state (strategy switch, host stop)."""
        with self._lock:
            doomed = list(self._per_handle.values())
            self._per_handle.clear()
        for v in doomed:
            self._release(v)

    @property
    def handles(self) -> int:
        return len(self._per_handle)

    # -- accounting -----------------------------------------------------------------

    def zones(self) -> list[Zone]:
        return [z for z in (self.zone, self.done_zone, self.crypto_zone) if z is not None]

    def stats(self) -> dict[str, Any]:
        """Zone counters (``vmstat -z`` style) and per-handle state size."""
        out: dict[str, Any] = {"strategy": self.name, "per_handle": len(self._per_handle)}
        for z in self.zones():
            s = z.stats
            out[z.name] = {"used": s.used, "requests": s.requests, "frees": s.frees,
                           "fails": s.fails, "peak": s.peak, "bytes": s.bytes,
                           "peak_bytes": s.peak_bytes}
        return out

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} per_handle={len(self._per_handle)}>"


class MTagStrategy(TagStrategy):
    """FreeBSD's per-packet ``PACKET_TAG_IPSEC_ACCEL_OUT`` m_tag."""

    name = TAG_MTAG
    per_packet_allocations = 1

    def __init__(self, host_name: str = "host", **kw: Any) -> None:
        super().__init__(host_name, **kw)
        self.zone = Zone(f"{host_name}.accel_out_tag", MTAG_HDR_SIZE + ACCEL_OUT_TAG_LEN,
                         factory=MTag, cache=256)

    def attach(self, m: Mbuf, ifp: Any, drv_spi: int, h: Any) -> bool:
        # ipsec_accel_output_tag: m_tag_get + m_tag_prepend.
        return m_tag_attach(m, _ACCEL_OUT, ACCEL_OUT_TAG_LEN, drv_spi, self.zone) is not None

    def read(self, m: Mbuf) -> Optional[int]:
        t = m_tag_find(m, _ACCEL_OUT)
        return None if t is None else t.data


class OutDoneStrategy(TagStrategy):
    """The OUT_DONE tag, reused: xform_history + drv_spi, one per packet."""

    name = TAG_OUTDONE
    per_packet_allocations = 1

    def __init__(self, host_name: str = "host", **kw: Any) -> None:
        super().__init__(host_name, **kw)
        self.zone = Zone(f"{host_name}.accel_out_tag",
                         MTAG_HDR_SIZE + OUT_DONE_ACCEL_TAG_LEN, factory=MTag, cache=256)

    def _history(self, ifp: Any, drv_spi: int, h: Any) -> XformHistory:
        key = h if h is not None else ifp
        xh = self._per_handle.get(key)
        if xh is None:
            def build() -> XformHistory:
                x = getattr(h, "xfh", None) if h is not None else None
                if x is not None:
                    return XformHistory(x.dst, x.spi, x.proto, x.mode, drv_spi)
                sav = getattr(h, "sav", None)
                if sav is not None and sav.sah is not None:
                    s = sav.sah.saidx
                    return XformHistory(s.dst, sav.spi, s.proto, s.mode, drv_spi)
                return XformHistory(None, 0, 0, 0, drv_spi)
            xh = self._per_handle_new(key, build)
        return xh  # type: ignore[no-any-return]

    def attach(self, m: Mbuf, ifp: Any, drv_spi: int, h: Any) -> bool:
        xh = self._history(ifp, drv_spi, h)
        return m_tag_attach(m, _OUT_DONE, OUT_DONE_ACCEL_TAG_LEN, xh, self.zone) is not None

    def read(self, m: Mbuf) -> Optional[int]:
        t = m_tag_find(m, _OUT_DONE)
        return None if t is None else t.data.drv_spi


class SndTagStrategy(TagStrategy):
    """One send tag per (ifnet, SA) handle (and per ifnet for BYPASS)."""

    name = TAG_SNDTAG
    per_packet_allocations = 0

    def __init__(self, host_name: str = "host", **kw: Any) -> None:
        super().__init__(host_name, **kw)
        self.snd_zone = Zone(f"{host_name}.accel_snd_tag", MSNDTAG_SIZE, factory=MSndTag)

    def zones(self) -> list[Zone]:
        return [self.snd_zone, self.done_zone, self.crypto_zone]

    def attach(self, m: Mbuf, ifp: Any, drv_spi: int, h: Any) -> bool:
        key = h if h is not None else ifp
        st = self._per_handle.get(key)
        if st is None:
            st = self._per_handle_new(key, lambda: m_snd_tag_alloc(
                ifp, IPSEC_SND_TAG_SW, softc=drv_spi, zone=self.snd_zone))
            if st is None:
                return False
        try:
            m_set_snd_tag(m, st)
        except RuntimeError:
            # Raced with a sweep that released the last reference: the tag
            # is gone, treat it as an allocation failure.
            return False
        return True

    def _release(self, v: Any) -> None:
        if isinstance(v, MSndTag) and v.refcount > 0:
            m_snd_tag_rele(v)

    def read(self, m: Mbuf) -> Optional[int]:
        if m.csum_flags & CSUM_SND_TAG:
            st = m.snd_tag
            if st is not None and st.sw is IPSEC_SND_TAG_SW:
                return st.softc  # type: ignore[no-any-return]
        return None


class PhFieldStrategy(TagStrategy):
    """The drv_spi in a packet-header field: nothing to allocate."""

    name = TAG_PHFIELD
    per_packet_allocations = 0

    def attach(self, m: Mbuf, ifp: Any, drv_spi: int, h: Any) -> bool:
        m.ph_spare = drv_spi
        return True

    def read(self, m: Mbuf) -> Optional[int]:
        ph = m.ph_spare
        return ph if ph.__class__ is int else None


_CLASSES: dict[str, type[TagStrategy]] = {
    TAG_MTAG: MTagStrategy, TAG_SNDTAG: SndTagStrategy, TAG_OUTDONE: OutDoneStrategy,
    TAG_PHFIELD: PhFieldStrategy,
}


def make_tag_strategy(name: str, host_name: str = "host", **kw: Any) -> TagStrategy:
    """A strategy by name (:data:`TAG_STRATEGIES`); ValueError otherwise."""
    cls = _CLASSES.get(name)
    if cls is None:
        raise ValueError(f"unknown tag strategy {name!r}; one of {', '.join(TAG_STRATEGIES)}")
    return cls(host_name, **kw)
