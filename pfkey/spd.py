"""The security policy database: one ``V_sptree[dir]`` list with an index.

Models the SPD parts of FreeBSD's ``sys/netipsec/key.c`` (``key_insertsp``,
``key_detach``, ``key_getsp``, ``key_do_allocsp``/``key_allocsp``,
``key_cmpspidx_exactly``, ``key_cmpspidx_withmask``, ``key_sockaddrcmp``,
``key_bbcmp``) and ``struct secpolicyindex`` of ``sys/netipsec/ipsec.h``.

Rules kept from FreeBSD
-----------------------
* **Order.**  A policy goes before the first policy whose priority is
  *strictly greater* (``key_insertsp``): lower ``priority`` values are matched
  first, equal priorities are FIFO.  ``priority`` is a ``uint32_t`` compared
  unsigned, so it is taken modulo 2**32 here.
* **Packet lookup** (``key_do_allocsp``): the *first* policy in list order
  whose selector matches (``key_cmpspidx_withmask`` with the policy's index as
  the pattern):

  - source and destination families and ``sa_len`` must be equal;
  - ``ul_proto`` 255 (IPSEC_ULPROTO_ANY) in the policy matches any protocol,
    otherwise it must be equal;
  - a policy port of 0 (IPSEC_PORT_ANY) matches any port, otherwise equal;
  - the first ``prefs``/``prefd`` bits of the addresses must be equal
    (``key_bbcmp``; host bits beyond the prefix are ignored on both sides);
  - IPv6: a ``sin6_scope_id`` of 0 on *either* side is a wildcard; two
    nonzero scope ids must be equal.  ``sin6_flowinfo`` is never compared;
  - other families: the first ``sa_len`` bytes must be equal (``bcmp``).
  The packet's own prefix lengths and direction are not looked at (the
  direction chose the tree).
* **Exact lookup** (``key_getsp``/``key_cmpspidx_exactly``): prefs, prefd,
  ul_proto and dir equal and ``key_sockaddrcmp(..., port=1)`` on both
  addresses: family and ``sa_len`` equal; AF_INET needs ``sa_len`` 16 and
  compares address and port (not ``sin_zero``); AF_INET6 needs ``sa_len`` 28
  and compares scope id, address and port (not flowinfo); other families
  compare ``sa_len`` bytes.

Where the model departs from FreeBSD
------------------------------------
FreeBSD walks the list for every packet (its optional per-flow SPD cache,
``net.key.spdcache``, only memoises those walks).  Here the lookup cost does
not grow with the number of policies, yet returns exactly the policy the walk
would return:

* policies are grouped by *shape*: families, ``sa_len``s, effective prefix
  lengths, which of (source port, destination port, protocol) are exact
  rather than wildcards, and which IPv6 scope ids are set;
* each shape hashes its policies by the packet-visible key (masked
  addresses, exact ports/protocol, scope ids) into buckets kept in list
  order, so every policy of a bucket matches a packet that hashes to it;
* a packet probes each shape of its family group in increasing order of the
  shape's earliest policy and stops as soon as no remaining shape can hold
  an earlier policy than the best match found.  The cost is one dict probe
  per distinct shape, independent of the number of policies (a realistic SPD
  has a handful of shapes; /32 host policies with exact ports are one).
* IPv6 scope wildcards are handled by indexing a scoped shape once per
  subset of its scoped sides: a packet without a scope id probes the table
  that leaves that side's scope out of the key.

Prefix lengths above the family's width cannot reach the SPD (key_parse
rejects them with EINVAL); were one to arrive, it is treated as full length,
which is what ``key_bbcmp`` does when the bytes after the address are zero.

Locking: FreeBSD guards ``V_sptree`` with the ``sptree_lock`` rmlock.
``SPDTree`` takes no lock itself; the key engine holds its SPTREE lock
around calls.  ``lookup``/``find_exact``/iteration never modify the tree,
so concurrent readers are safe under a shared lock.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from typing import Any, Generic, Iterable, Iterator, NamedTuple, Optional, Protocol, TypeVar

# sortedcontainers ships no type information (stubs: sortedcontainers-stubs).
from sortedcontainers import SortedDict, SortedKeyList, SortedList  # type: ignore[import-untyped]

from .extensions import Sockaddr
from .ipsec import IPSEC_PORT_ANY, IPSEC_ULPROTO_ANY
from .pfkeyv2 import AF_INET, AF_INET6

__all__ = [
    "SecPolicyIndex", "SPDTree", "SecPolicyLike", "lookup_linear",
    "key_cmpspidx_exactly", "key_cmpspidx_withmask", "key_sockaddrcmp", "key_bbcmp",
]


class SecPolicyIndex(NamedTuple):
    """``struct secpolicyindex``: the selector of a policy.

    Ports live inside the sockaddrs (0 = any); ``ul_proto`` 255 = any.
    """

    dir: int
    src: Sockaddr
    dst: Sockaddr
    prefs: int
    prefd: int
    ul_proto: int


class SecPolicyLike(Protocol):
    """What the SPD needs from a policy object (the key engine's secpolicy).

    Objects are hashed by identity (``attrs.define(eq=False)``).
    """

    @property
    def spidx(self) -> SecPolicyIndex: ...

    @property
    def priority(self) -> int: ...


_SP = TypeVar("_SP", bound=SecPolicyLike)


# ---------------------------------------------------------------------------
# key.c comparison functions, byte for byte (the oracle)
# ---------------------------------------------------------------------------

_UNION_LEN = 28  # sizeof(union sockaddr_union) on FreeBSD (sockaddr_in6)


def _union(sa: Sockaddr) -> bytes:
    """The bytes of the zeroed ``sockaddr_union`` after ``bcopy(sa, sa_len)``."""
    raw = bytes((sa.sa_len & 0xFF, sa.family & 0xFF)) + bytes(sa.data)
    raw = raw[:sa.sa_len]
    return raw.ljust(_UNION_LEN, b"\0")


def key_bbcmp(a1: bytes, a2: bytes, bits: int) -> bool:
    """``key_bbcmp``: True when the first ``bits`` bits of a1 and a2 are equal."""
    nbytes, rem = divmod(bits, 8)
    if a1[:nbytes] != a2[:nbytes]:
        return False
    if rem:
        if nbytes >= len(a1) or nbytes >= len(a2):
            return len(a1) == len(a2)
        mask = (0xFF << (8 - rem)) & 0xFF
        return (a1[nbytes] & mask) == (a2[nbytes] & mask)
    return True


def key_sockaddrcmp(sa1: Sockaddr, sa2: Sockaddr, port: bool) -> int:
    """``key_sockaddrcmp``: 0 when equal (FreeBSD's convention), 1 otherwise."""
    if sa1.family != sa2.family or sa1.sa_len != sa2.sa_len:
        return 1
    u1, u2 = _union(sa1), _union(sa2)
    if sa1.family == AF_INET:
        if sa1.sa_len != 16:
            return 1
        if u1[4:8] != u2[4:8]:
            return 1
        if port and u1[2:4] != u2[2:4]:
            return 1
        return 0
    if sa1.family == AF_INET6:
        if sa1.sa_len != 28:
            return 1
        if u1[24:28] != u2[24:28]:          # sin6_scope_id
            return 1
        if u1[8:24] != u2[8:24]:            # sin6_addr
            return 1
        if port and u1[2:4] != u2[2:4]:
            return 1
        return 0
    return 0 if u1[:sa1.sa_len] == u2[:sa1.sa_len] else 1


def key_cmpspidx_exactly(spidx0: SecPolicyIndex, spidx1: SecPolicyIndex) -> bool:
    """``key_cmpspidx_exactly``: the SPDADD/SPDDELETE duplicate test."""
    if (spidx0.prefs != spidx1.prefs or spidx0.prefd != spidx1.prefd
            or spidx0.ul_proto != spidx1.ul_proto or spidx0.dir != spidx1.dir):
        return False
    return (key_sockaddrcmp(spidx0.src, spidx1.src, True) == 0
            and key_sockaddrcmp(spidx0.dst, spidx1.dst, True) == 0)


def _side_withmask(pat: Sockaddr, obj: Sockaddr, pref: int) -> bool:
    u0, u1 = _union(pat), _union(obj)
    if pat.family == AF_INET:
        if u0[2:4] != b"\0\0" and u0[2:4] != u1[2:4]:
            return False
        return key_bbcmp(u0[4:8], u1[4:8], min(pref, 32))
    if pat.family == AF_INET6:
        if u0[2:4] != b"\0\0" and u0[2:4] != u1[2:4]:
            return False
        s0, s1 = u0[24:28], u1[24:28]
        if s0 != b"\0\0\0\0" and s1 != b"\0\0\0\0" and s0 != s1:
            return False
        return key_bbcmp(u0[8:24], u1[8:24], min(pref, 128))
    return u0[:pat.sa_len] == u1[:pat.sa_len]


def key_cmpspidx_withmask(spidx0: SecPolicyIndex, spidx1: SecPolicyIndex) -> bool:
    """``key_cmpspidx_withmask``: does policy selector ``spidx0`` match the
    packet index ``spidx1``?  (Direction and spidx1's prefixes are ignored.)"""
    if (spidx0.src.family != spidx1.src.family or spidx0.dst.family != spidx1.dst.family
            or spidx0.src.sa_len != spidx1.src.sa_len
            or spidx0.dst.sa_len != spidx1.dst.sa_len):
        return False
    if spidx0.ul_proto != IPSEC_ULPROTO_ANY and spidx0.ul_proto != spidx1.ul_proto:
        return False
    return (_side_withmask(spidx0.src, spidx1.src, spidx0.prefs)
            and _side_withmask(spidx0.dst, spidx1.dst, spidx0.prefd))


def _packet_index(src: Sockaddr, dst: Sockaddr, ul_proto: int) -> SecPolicyIndex:
    return SecPolicyIndex(0, src, dst, src.plen, dst.plen, ul_proto)


def lookup_linear(sps: Iterable[_SP], src: Sockaddr, dst: Sockaddr,
                  ul_proto: int) -> Optional[_SP]:
    """``key_do_allocsp``'s list walk: the first policy of ``sps`` (in the
    order given) whose selector matches.  The baseline and the oracle."""
    pkt = _packet_index(src, dst, ul_proto)
    for sp in sps:
        if key_cmpspidx_withmask(sp.spidx, pkt):
            return sp
    return None


# ---------------------------------------------------------------------------
# Decomposing sockaddrs for the index
# ---------------------------------------------------------------------------

_ZERO26 = bytes(26)


def _inet_data(sa: Sockaddr, need: int) -> bytes:
    """``sa.data`` as the zeroed union holds it: sa_len-2 bytes, zero padded."""
    d = sa.data
    if len(d) == need and sa.sa_len - 2 >= need:
        return d
    d = bytes(d[:max(sa.sa_len - 2, 0)])
    return (d + _ZERO26)[:need]


def _decompose(sa: Sockaddr) -> tuple[int, int, int, int]:
    """(address as int, port, scope id, full width in bits) of a sockaddr.

    Non-inet families compare ``sa_len`` raw bytes; they become one integer
    with no port or scope (sa_len is part of the group key, so equal
    integers mean equal bytes).
    """
    fam = sa.family
    if fam == AF_INET:
        d = _inet_data(sa, 14)
        return int.from_bytes(d[2:6], "big"), (d[0] << 8) | d[1], 0, 32
    if fam == AF_INET6:
        d = _inet_data(sa, 26)
        return (int.from_bytes(d[6:22], "big"), (d[0] << 8) | d[1],
                int.from_bytes(d[22:26], "little"), 128)
    raw = _union(sa)[:sa.sa_len]
    return int.from_bytes(raw, "big"), 0, 0, -1


def _mask(pref: int, width: int) -> int:
    if width < 0:                      # raw-bytes family: compare everything
        return -1
    pref = width if pref > width else max(pref, 0)
    return ((1 << pref) - 1) << (width - pref)


def _exact_side(sa: Sockaddr) -> Optional[tuple[Any, ...]]:
    """What ``key_sockaddrcmp(.., port=1)`` compares; None = equal to nothing."""
    fam = sa.family
    if fam == AF_INET:
        if sa.sa_len != 16:
            return None
        d = _inet_data(sa, 14)
        return (fam, 16, d[2:6], d[0:2])
    if fam == AF_INET6:
        if sa.sa_len != 28:
            return None
        d = _inet_data(sa, 26)
        return (fam, 28, d[6:22], d[0:2], d[22:26])
    return (fam, sa.sa_len, _union(sa)[:sa.sa_len])


def _exact_key(spidx: SecPolicyIndex) -> Optional[tuple[Any, ...]]:
    s = _exact_side(spidx.src)
    d = _exact_side(spidx.dst)
    if s is None or d is None:
        return None
    return (spidx.dir, spidx.prefs, spidx.prefd, spidx.ul_proto, s, d)


# ---------------------------------------------------------------------------
# The index
# ---------------------------------------------------------------------------

_NO_MATCH = 1 << 200   # larger than every order key
_U32 = 0xFFFFFFFF


class _Shape:
    """Every policy of one group sharing prefix lengths and wildcard pattern."""

    __slots__ = ("key", "smask", "dmask", "sport", "dport", "proto", "scoped",
                 "tables", "members", "min_key")

    def __init__(self, key: tuple[Any, ...], smask: int, dmask: int, sport: bool,
                 dport: bool, proto: bool, scoped: int) -> None:
        self.key = key
        self.smask = smask
        self.dmask = dmask
        self.sport = sport
        self.dport = dport
        self.proto = proto
        # bit 0: source scope id is set in these policies, bit 1: destination
        self.scoped = scoped
        # tables[t]: bucket key -> bucket, where t says which scoped sides'
        # scope ids are part of the key (t is a subset of `scoped`)
        self.tables: list[Optional[dict[tuple[int, ...], list[tuple[int, Any]]]]] = [
            {} if (t & scoped) == t else None for t in range(4)]
        self.members: SortedList = SortedList()
        self.min_key = _NO_MATCH


class _Group:
    """All shapes for one (src family, src sa_len, dst family, dst sa_len)."""

    __slots__ = ("shapes", "by_key")

    def __init__(self) -> None:
        # probed in this order: a shape whose earliest policy comes after
        # the best match found so far cannot change the answer
        self.shapes: SortedKeyList = SortedKeyList(key=_min_key)
        self.by_key: dict[tuple[Any, ...], _Shape] = {}


def _min_key(shape: _Shape) -> int:
    return shape.min_key


class _Rec(NamedTuple):
    order: int
    group_key: tuple[int, int, int, int]
    shape: _Shape
    buckets: tuple[tuple[int, tuple[int, ...]], ...]
    exact: Optional[tuple[Any, ...]]


def _bucket_add(bucket: list[tuple[int, Any]], order: int, sp: Any) -> None:
    # order keys are unique, so tuples never compare the policy objects
    insort(bucket, (order, sp))


def _bucket_del(bucket: list[tuple[int, Any]], order: int) -> None:
    i = bisect_left(bucket, (order,))
    del bucket[i]


class SPDTree(Generic[_SP]):
    """One ``V_sptree[dir]``: the policies of one direction in FreeBSD list
    order, indexed for exact (``key_getsp``) and packet (``key_allocsp``)
    lookups.  Mutations cost O(log n) plus a list insertion into the bucket
    of policies sharing the same masked selector; lookups cost one probe per
    distinct selector shape, whatever the number of policies.

    ``dir``, when given, is checked against every inserted policy.
    """

    def __init__(self, dir: Optional[int] = None) -> None:
        self.dir = dir
        self._reset()

    def _reset(self) -> None:
        self._seq = 0
        self._order: SortedDict = SortedDict()        # order key -> sp
        self._recs: dict[_SP, _Rec] = {}              # sp (by identity) -> record
        self._groups: dict[tuple[int, int, int, int], _Group] = {}
        self._exact: dict[tuple[Any, ...], list[tuple[int, _SP]]] = {}

    # -- list behaviour ------------------------------------------------------

    def __len__(self) -> int:
        return len(self._recs)

    def __iter__(self) -> Iterator[_SP]:
        """Policies in list order (what FreeBSD's TAILQ_FOREACH visits)."""
        return iter(list(self._order.values()))

    def __contains__(self, sp: object) -> bool:
        return sp in self._recs

    def __bool__(self) -> bool:
        return bool(self._recs)

    def clear(self) -> None:
        """Empty the tree (key_spdflush)."""
        self._reset()

    # -- mutations -----------------------------------------------------------

    def insert(self, sp: _SP) -> None:
        """``key_insertsp``: before the first policy whose priority is
        strictly greater than ``sp.priority``; FIFO among equal priorities."""
        if sp in self._recs:
            raise ValueError("policy is already in this SPD tree")
        spidx: SecPolicyIndex = sp.spidx
        if self.dir is not None and spidx.dir != self.dir:
            raise ValueError(f"policy dir {spidx.dir} inserted into the dir {self.dir} tree")
        self._seq += 1
        # (priority, arrival): a later arrival with the same priority sorts
        # after every earlier one, which is key_insertsp's FIFO rule
        order = ((sp.priority & _U32) << 64) | self._seq

        sa, sport, sscope, swidth = _decompose(spidx.src)
        da, dport, dscope, dwidth = _decompose(spidx.dst)
        gkey = (spidx.src.family, spidx.src.sa_len, spidx.dst.family, spidx.dst.sa_len)
        smask = _mask(spidx.prefs, swidth)
        dmask = _mask(spidx.prefd, dwidth)
        sport_x = sport != IPSEC_PORT_ANY
        dport_x = dport != IPSEC_PORT_ANY
        proto_x = spidx.ul_proto != IPSEC_ULPROTO_ANY
        scoped = (1 if sscope else 0) | (2 if dscope else 0)
        shkey = (smask, dmask, sport_x, dport_x, proto_x, scoped)

        group = self._groups.get(gkey)
        if group is None:
            group = self._groups[gkey] = _Group()
        shape = group.by_key.get(shkey)
        if shape is None:
            shape = group.by_key[shkey] = _Shape(shkey, smask, dmask, sport_x, dport_x,
                                                 proto_x, scoped)
        base = (sa & smask, da & dmask, sport if sport_x else 0, dport if dport_x else 0,
                spidx.ul_proto if proto_x else 0)
        buckets = []
        for t in range(4):
            table = shape.tables[t]
            if table is None:
                continue
            bkey = base + (sscope if t & 1 else 0, dscope if t & 2 else 0)
            bucket = table.get(bkey)
            if bucket is None:
                bucket = table[bkey] = []
            _bucket_add(bucket, order, sp)
            buckets.append((t, bkey))

        shape.members.add(order)
        if order < shape.min_key:
            if shape.min_key != _NO_MATCH:
                group.shapes.remove(shape)
            shape.min_key = order
            group.shapes.add(shape)

        ekey = _exact_key(spidx)
        if ekey is not None:
            _bucket_add(self._exact.setdefault(ekey, []), order, sp)

        self._order[order] = sp
        self._recs[sp] = _Rec(order, gkey, shape, tuple(buckets), ekey)

    def remove(self, sp: _SP) -> None:
        """Unlink ``sp`` (key_detach).  KeyError if it is not in the tree."""
        rec = self._recs.pop(sp)
        del self._order[rec.order]
        shape = rec.shape
        for t, bkey in rec.buckets:
            table = shape.tables[t]
            assert table is not None
            bucket = table[bkey]
            _bucket_del(bucket, rec.order)
            if not bucket:
                del table[bkey]
        group = self._groups[rec.group_key]
        shape.members.remove(rec.order)
        if rec.order == shape.min_key:
            group.shapes.remove(shape)
            if shape.members:
                shape.min_key = shape.members[0]
                group.shapes.add(shape)
            else:
                del group.by_key[shape.key]
                if not group.by_key:
                    del self._groups[rec.group_key]
        if rec.exact is not None:
            bucket = self._exact[rec.exact]
            _bucket_del(bucket, rec.order)
            if not bucket:
                del self._exact[rec.exact]

    def discard(self, sp: _SP) -> None:
        """Remove ``sp`` if present."""
        if sp in self._recs:
            self.remove(sp)

    # -- lookups -------------------------------------------------------------

    def find_exact(self, spidx: SecPolicyIndex) -> Optional[_SP]:
        """``key_getsp``: the first policy whose selector equals ``spidx``
        exactly (``key_cmpspidx_exactly``), or None."""
        ekey = _exact_key(spidx)
        if ekey is None:
            return None
        bucket = self._exact.get(ekey)
        return bucket[0][1] if bucket else None

    def lookup(self, src: Sockaddr, dst: Sockaddr, ul_proto: int) -> Optional[_SP]:
        """``key_allocsp``: the first policy in list order whose selector
        matches the packet (``key_cmpspidx_withmask``), or None."""
        group = self._groups.get((src.family, src.sa_len, dst.family, dst.sa_len))
        if group is None:
            return None
        sa, sport, sscope, _ = _decompose(src)
        da, dport, dscope, _ = _decompose(dst)
        pscoped = (1 if sscope else 0) | (2 if dscope else 0)
        best = _NO_MATCH
        found: Optional[_SP] = None
        shape: _Shape  # group.shapes is an untyped SortedKeyList of _Shape
        for shape in group.shapes:
            if shape.min_key >= best:
                break
            t = shape.scoped & pscoped
            table = shape.tables[t]
            # t is a subset of shape.scoped, and tables[t] is a dict for
            # every such t; no None check on the lookup path.
            bucket = table.get((  # type: ignore[union-attr]
                sa & shape.smask, da & shape.dmask,
                sport if shape.sport else 0, dport if shape.dport else 0,
                ul_proto if shape.proto else 0,
                sscope if t & 1 else 0, dscope if t & 2 else 0))
            if bucket is not None:
                order, sp = bucket[0]
                if order < best:
                    best, found = order, sp
        return found

    # -- invariants ----------------------------------------------------------

    def _check(self) -> None:
        """Assert the index agrees with the list (for keydb's ``_check()``)."""
        assert len(self._order) == len(self._recs)
        prev: Optional[int] = None
        for order, sp in self._order.items():
            rec = self._recs[sp]
            assert rec.order == order
            if prev is not None:
                assert (prev >> 64) <= (order >> 64)
            prev = order
            shape = rec.shape
            assert self._groups[rec.group_key].by_key[shape.key] is shape
            for t, bkey in rec.buckets:
                table = shape.tables[t]
                assert table is not None and (order, sp) in table[bkey]
            if rec.exact is not None:
                assert (order, sp) in self._exact[rec.exact]
        nbuckets = 0
        for group in self._groups.values():
            assert list(group.shapes) == sorted(group.by_key.values(), key=_min_key)
            for shape in group.by_key.values():
                assert shape.members and shape.min_key == shape.members[0]
                nbuckets += len(shape.members)
        assert nbuckets == len(self._recs)
