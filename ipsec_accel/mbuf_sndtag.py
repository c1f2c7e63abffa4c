"""Send tags: ``struct m_snd_tag`` (``sys/sys/mbuf.h``), ``struct
if_snd_tag_sw`` and the ``IF_SND_TAG_TYPE_*`` values (``sys/net/if_var.h``),
and ``m_snd_tag_init``/``m_snd_tag_ref``/``m_snd_tag_rele``/
``m_snd_tag_destroy`` (``sys/kern/kern_mbuf.c``).

An :class:`MSndTag` is bound to an ifnet (it holds an ``if_ref``), is
refcounted, is destroyed through its switch's ``snd_tag_free`` when the last
reference goes, and comes from its own zone (:data:`snd_tag_zone`).  FreeBSD
has no IPsec send tag; the model uses one for the "send tag created once per
(ifnet, SA) handle" tag strategy (:data:`IF_SND_TAG_TYPE_IPSEC_ACCEL`,
:mod:`ipsec_accel.accel_tag`).

Why a module of its own: a send tag is an object with its own life (ifnet
reference, refcount, driver switch), not part of the packet, and it was the
last third of an oversized ``mbuf.py``.  What touches an mbuf stays in
:mod:`ipsec_accel.mbuf`: :func:`~ipsec_accel.mbuf.m_set_snd_tag` (the
``snd_tag``/``rcvif`` union and ``CSUM_SND_TAG``) and ``m_free``, which
inlines :func:`m_snd_tag_rele` for the per-packet path and therefore imports
the private ``_REF_BASE``/``_REF`` tokens and ``_m_snd_tag_destroy`` from
here.  This module imports nothing from :mod:`ipsec_accel.mbuf` (no cycle);
:mod:`ipsec_accel.mbuf` re-exports every public name here.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Protocol

from .uma import M_NOWAIT, Zone

__all__ = [
    "MSndTag", "IfSndTagSw", "m_snd_tag_init", "m_snd_tag_alloc", "m_snd_tag_ref",
    "m_snd_tag_rele", "snd_tag_zone", "MSNDTAG_SIZE",
    "IF_SND_TAG_TYPE_RATE_LIMIT", "IF_SND_TAG_TYPE_UNLIMITED", "IF_SND_TAG_TYPE_TLS",
    "IF_SND_TAG_TYPE_TLS_RATE_LIMIT", "IF_SND_TAG_TYPE_TLS_RX", "IF_SND_TAG_TYPE_IPSEC_ACCEL",
]

# send tag types (sys/net/if_var.h)
IF_SND_TAG_TYPE_RATE_LIMIT = 0
IF_SND_TAG_TYPE_UNLIMITED = 1
IF_SND_TAG_TYPE_TLS = 2
IF_SND_TAG_TYPE_TLS_RATE_LIMIT = 3
IF_SND_TAG_TYPE_TLS_RX = 4
#: Model-only: FreeBSD has no IPsec send tag.  This is the "send tag created
#: once per (ifnet, SA) handle" alternative the FreeBSD review asked about.
IF_SND_TAG_TYPE_IPSEC_ACCEL = 0x100

#: sizeof(struct m_snd_tag): ifp 8, sw 8, refcount 4 (+pad).
MSNDTAG_SIZE = 24


# What a send tag needs of its ifnet: typing only, so that this module does
# not import ipsec_accel.ifnet (which imports the mbuf modules).
class _IfRef(Protocol):
    def if_ref(self) -> None: ...
    def if_rele(self) -> None: ...


class IfSndTagSw(NamedTuple):
    """``struct if_snd_tag_sw``: the driver's switch for one tag type."""

    type: int
    snd_tag_free: Callable[["MSndTag"], None] | None = None
    snd_tag_modify: Callable[["MSndTag", Any], int] | None = None
    snd_tag_query: Callable[["MSndTag", Any], int] | None = None


class MSndTag:
    """``struct m_snd_tag`` (+ ``softc`` for the driver's private part,
    which in C is the surrounding structure)."""

    __slots__ = ("ifp", "sw", "_refs", "softc", "zone")

    def __init__(self) -> None:
        self.ifp: Any = None
        self.sw: IfSndTagSw | None = None
        self._refs: list[object] = []     # reference tokens (see _REF_BASE)
        self.softc: Any = None
        self.zone: Zone | None = None

    @property
    def refcount(self) -> int:
        return len(self._refs)

    @property
    def type(self) -> int:
        return self.sw.type if self.sw is not None else -1

    def __repr__(self) -> str:
        name = getattr(self.ifp, "if_xname", self.ifp)
        return f"<MSndTag if={name} type={self.type} refs={self.refcount}>"


#: Zone for send tags (drivers allocate their own in C; one zone here).
snd_tag_zone = Zone("snd_tag", MSNDTAG_SIZE, factory=MSndTag)

# refcount(9) atomics without a lock: a send tag's references are tokens in
# a list (list.append and list.pop are atomic under the GIL).  m_snd_tag_init
# puts the base token at the bottom; every other reference pushes a plain
# token; a release pops one.  The base token can only be popped when it is
# the last one, so exactly one releaser sees it: that is refcount_release
# returning true, and that thread destroys the tag.  A reference pushes first
# and then checks the base token is still at the bottom (it never comes back
# to that list): if not, the tag is dead and the push is undone -- the
# "acquire if not zero" the lock used to give.
_REF_BASE = object()
_REF = object()


def m_snd_tag_init(mst: MSndTag, ifp: _IfRef, sw: IfSndTagSw) -> MSndTag:
    """``m_snd_tag_init``: one reference, an ``if_ref`` on the ifnet."""
    ifp.if_ref()
    mst.ifp = ifp
    mst.sw = sw
    mst._refs = [_REF_BASE]
    return mst


def m_snd_tag_alloc(ifp: _IfRef, sw: IfSndTagSw, softc: Any = None,
                    zone: Zone | None = None, wait: int = M_NOWAIT) -> MSndTag | None:
    """Allocate and initialise a send tag from ``zone`` (default
    :data:`snd_tag_zone`).  In FreeBSD the driver's ``if_snd_tag_alloc``
    does this; model drivers call this helper."""
    z = snd_tag_zone if zone is None else zone
    mst = z.alloc(None, wait)
    if mst is None:
        return None
    mst.zone = z
    mst.softc = softc
    return m_snd_tag_init(mst, ifp, sw)


def m_snd_tag_ref(mst: MSndTag) -> MSndTag:
    """``m_snd_tag_ref`` (the caller holds a reference, as in FreeBSD; a
    destroyed tag is refused)."""
    refs = mst._refs
    refs.append(_REF)
    if refs[0] is not _REF_BASE:        # the base token is gone: destroyed
        refs.pop()
        raise RuntimeError(f"m_snd_tag_ref on a destroyed tag {mst!r}")
    return mst


def m_snd_tag_rele(mst: MSndTag) -> None:
    """``m_snd_tag_rele``: the last release destroys the tag
    (``m_snd_tag_destroy``: driver free, ``if_rele``, zone free)."""
    try:
        tok = mst._refs.pop()
    except IndexError:
        raise RuntimeError(f"m_snd_tag_rele underflow on {mst!r}") from None
    if tok is _REF_BASE:
        _m_snd_tag_destroy(mst)


def _m_snd_tag_destroy(mst: MSndTag) -> None:
    """``m_snd_tag_destroy``: driver free, ``if_rele``, zone free.  Called by
    whoever popped the base token (m_snd_tag_rele and m_free's inlined copy)."""
    sw = mst.sw
    if sw is not None and sw.snd_tag_free is not None:
        sw.snd_tag_free(mst)
    ifp = mst.ifp
    mst.ifp = None
    mst.softc = None
    z = mst.zone
    mst.zone = None
    if ifp is not None:
        ifp.if_rele()
    if z is not None:
        z.free(mst)
