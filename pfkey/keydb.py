"""Kernel key objects of FreeBSD's ``sys/netipsec/keydb.h`` and ``ipsec.h``.

* ``secasindex`` (SA index), ``secashead`` (one per index, holding the LARVAL
  and the alive -- MATURE and DYING -- SA lists), ``secasvar`` (an SA),
  ``seclifetime``, ``secreplay``, ``secnatt``, ``seckey``;
* ``secpolicy`` with its ``ipsecrequest`` list (``secpolicyindex`` lives in
  ``pfkey.spd`` as ``SecPolicyIndex``);
* ``secacq`` (ACQUIRE blocking entries) and ``secspacq``;
* the SA state machine LARVAL -> MATURE -> DYING -> DEAD and the SP state
  machine, each written as **one table**: :data:`SA_STATE_TABLE`,
  :data:`SP_STATE_TABLE`.  An event not in the table raises
  :class:`StateTransitionError` -- a programming error, never a protocol one;
* :class:`KeyDB`: the per-vnet databases key.c keeps in ``V_`` variables
  (``V_sahtree``, ``V_savhashtbl``, ``V_sahaddrhashtbl``, ``V_sptree``,
  ``V_sptree_ifnet``, ``V_sphashtbl``, ``V_acqtree`` ...), their locks, and
  :meth:`KeyDB._check`, the invariant checker tests call after every step.

Rules: kernel objects are ``attrs.define(slots=True, eq=False)`` (identity
hashing, like pointers); SPIs are held as the integer of the network-order
value (what ``SadbSa.spi`` carries), so ``savhash[spi]`` is key.c's SPI hash;
address comparisons follow ``key_sockaddrcmp`` (family, length, address and
IPv6 scope; never the port, ``sin_zero`` or flowinfo).  FreeBSD's ordered
TAILQs that insert at the head are dicts used as ordered sets with the head at
the *end*: ``reversed(d)`` walks head to tail and ``next(iter(d))`` is
``TAILQ_LAST``.
"""

from __future__ import annotations

import enum
import threading
from typing import Any, Iterator, NamedTuple, Optional

import attrs

from .extensions import Sockaddr
from .ipsec import IPSEC_DIR, IPSEC_MODE
from .pfkeyv2 import AF_INET, AF_INET6, SADB_SASTATE

LARVAL = int(SADB_SASTATE.LARVAL)
MATURE = int(SADB_SASTATE.MATURE)
DYING = int(SADB_SASTATE.DYING)
DEAD = int(SADB_SASTATE.DEAD)

# secpolicy.state (ipsec.h)
IPSEC_SPSTATE_DEAD = 0
IPSEC_SPSTATE_LARVAL = 1
IPSEC_SPSTATE_ALIVE = 2
IPSEC_SPSTATE_PCB = 3
IPSEC_SPSTATE_IFNET = 4

# secasvar.accel_flags (keydb.h)
SADB_KEY_ACCEL_INST = 0x1
SADB_KEY_ACCEL_DEINST = 0x2

# secnatt.flags
IPSEC_NATT_F_OAI = 0x1
IPSEC_NATT_F_OAR = 0x2

# key_cmpsaidx() flags
CMP_HEAD = 1
CMP_MODE_REQID = 2
CMP_REQID = 3
CMP_EXACTLY = 4


class StateTransitionError(RuntimeError):
    """An SA or SP state change the tables do not allow (a bug, not bad input)."""


# ---------------------------------------------------------------------------
# sockaddr helpers (key_sockaddrcmp, key_porttosaddr, key_checksockaddrs)
# ---------------------------------------------------------------------------

_EMPTY_SA = Sockaddr(0, 0, b"")


def sa_key(sa: Sockaddr) -> tuple[Any, ...]:
    """The equivalence class of ``key_sockaddrcmp(a, b, 0)``: family, sa_len,
    address, and the scope for IPv6; never the port.  Hashable, so key.c's
    address hashes become dict keys."""
    f = sa.family
    d = sa.data
    if f == AF_INET:
        return (f, sa.sa_len, d[2:6])
    if f == AF_INET6:
        return (f, sa.sa_len, d[6:22], d[22:26])
    return (f, sa.sa_len, d)


def sa_key_port(sa: Sockaddr) -> tuple[Any, ...]:
    """``key_sockaddrcmp(a, b, 1)``: as :func:`sa_key` plus the port."""
    f = sa.family
    if f == AF_INET or f == AF_INET6:
        return sa_key(sa) + (sa.data[0:2],)
    return sa_key(sa)


def sa_noport(sa: Sockaddr) -> Sockaddr:
    """key_porttosaddr(sa, 0): the sockaddr with its port zeroed."""
    f = sa.family
    if (f == AF_INET or f == AF_INET6) and len(sa.data) >= 2 and sa.data[:2] != b"\0\0":
        return Sockaddr(f, sa.sa_len, b"\0\0" + sa.data[2:])
    return sa


def sa_bytes(sa: Sockaddr) -> bytes:
    """Exactly ``sa_len`` bytes, as bcopy(sa, p, sa->sa_len) writes them."""
    raw = bytes((sa.sa_len & 0xFF, sa.family & 0xFF)) + sa.data
    n = sa.sa_len
    return raw[:n] if len(raw) >= n else raw + bytes(n - len(raw))


def sa_from_raw(raw: bytes) -> Sockaddr:
    """A sockaddr from exactly the bytes key.c copied (``sa_len`` of them)."""
    n = len(raw)
    if n == 0:
        return _EMPTY_SA
    return Sockaddr(raw[1] if n > 1 else 0, raw[0], raw[2:])


def key_checksockaddrs(src: Sockaddr, dst: Sockaddr) -> int:
    """key_checksockaddrs: 0, EINVAL or EAFNOSUPPORT (host errno numbers)."""
    import errno
    if src.family != dst.family or src.sa_len != dst.sa_len:
        return errno.EINVAL
    if src.family == AF_INET:
        return 0 if src.sa_len == 16 else errno.EINVAL
    if src.family == AF_INET6:
        return 0 if src.sa_len == 28 else errno.EINVAL
    return errno.EAFNOSUPPORT


def full_plen(sa: Sockaddr) -> int:
    """FULLMASK (0xff) resolved per family as key_setsadbaddr does."""
    if sa.family == AF_INET:
        return 32
    if sa.family == AF_INET6:
        return 128
    return 0xFF


# ---------------------------------------------------------------------------
# secasindex
# ---------------------------------------------------------------------------

class secasindex(NamedTuple):
    """struct secasindex: src/dst (ports zeroed by KEY_SETSECASIDX), proto,
    mode, reqid."""

    src: Sockaddr
    dst: Sockaddr
    proto: int
    mode: int = 0
    reqid: int = 0

    @classmethod
    def make(cls, proto: int, mode: int, reqid: int, src: Sockaddr,
             dst: Sockaddr) -> "secasindex":
        """KEY_SETSECASIDX: ports are zeroed."""
        return cls(sa_noport(src), sa_noport(dst), proto, mode, reqid)

    @property
    def addrkey(self) -> tuple[Any, ...]:
        """The SAHADDRHASH / ACQADDRHASH key: proto + both addresses."""
        return (self.proto, sa_key(self.src), sa_key(self.dst))


def key_cmpsaidx(saidx0: secasindex, saidx1: secasindex, flag: int) -> bool:
    """key_cmpsaidx: ``saidx0`` is the one in the SAD, ``saidx1`` the object.

    Not symmetric: with CMP_MODE_REQID an SAD entry of mode ANY matches any
    mode, and a zero reqid in the object matches any reqid.
    """
    if saidx0.proto != saidx1.proto:
        return False
    if flag == CMP_EXACTLY:
        return (saidx0.mode == saidx1.mode and saidx0.reqid == saidx1.reqid
                and sa_bytes(saidx0.src) == sa_bytes(saidx1.src)[:saidx0.src.sa_len]
                and sa_bytes(saidx0.dst) == sa_bytes(saidx1.dst)[:saidx0.dst.sa_len])
    if flag == CMP_MODE_REQID or flag == CMP_REQID:
        if saidx1.reqid != 0 and saidx0.reqid != saidx1.reqid:
            return False
    if flag == CMP_MODE_REQID:
        if saidx0.mode != IPSEC_MODE.ANY and saidx0.mode != saidx1.mode:
            return False
    return sa_key(saidx0.src) == sa_key(saidx1.src) and sa_key(saidx0.dst) == sa_key(saidx1.dst)


# ---------------------------------------------------------------------------
# SA pieces
# ---------------------------------------------------------------------------

@attrs.define(slots=True, eq=False)
class seclifetime:
    """struct seclifetime (HARD/SOFT limits, or a CURRENT snapshot)."""

    allocations: int = 0
    bytes: int = 0
    addtime: int = 0
    usetime: int = 0


@attrs.define(slots=True, eq=False)
class seckey:
    """struct seckey: ``bits`` as sent, ``key_data`` the extension's payload.

    key.c uses ``bits / 8`` bytes (_KEYLEN) and never checks it against the
    extension's length; :attr:`key` gives those bytes.
    """

    bits: int
    key_data: bytes

    @property
    def keylen(self) -> int:
        return self.bits >> 3

    @property
    def key(self) -> bytes:
        n = self.bits >> 3
        d = self.key_data
        return d[:n] if len(d) >= n else d + bytes(n - len(d))


@attrs.define(slots=True, eq=False)
class secreplay:
    """struct secreplay: window in bytes (``wsize``), counters."""

    wsize: int = 0
    count: int = 0
    last: int = 0
    bitmap_size: int = 0
    overflow: int = 0
    bitmap: Optional[bytearray] = None


@attrs.define(slots=True, eq=False)
class secnatt:
    """struct secnatt: NAT-T ports (integers), original addresses, cksum delta."""

    sport: int = 0
    dport: int = 0
    oai: Optional[Sockaddr] = None
    oar: Optional[Sockaddr] = None
    cksum: int = 0
    flags: int = 0


@attrs.define(slots=True, eq=False)
class secashead:
    """struct secashead: one SA index and its SA lists.

    ``savtree_larval`` / ``savtree_alive`` are dicts used as ordered sets with
    the TAILQ head at the end (see the module docstring).
    """

    saidx: secasindex
    addrkey: tuple[Any, ...]
    state: int = DEAD                      # DEAD until linked, then MATURE
    savtree_alive: dict["secasvar", None] = attrs.Factory(dict)
    savtree_larval: dict["secasvar", None] = attrs.Factory(dict)
    idents: Any = None
    identd: Any = None
    refcnt: int = 1

    def alive_head_first(self) -> list["secasvar"]:
        return list(reversed(self.savtree_alive))

    def larval_head_first(self) -> list["secasvar"]:
        return list(reversed(self.savtree_larval))


@attrs.define(slots=True, eq=False)
class secasvar:
    """struct secasvar (keydb.h), offload fields included.

    ``spi`` is the integer of the network-order SPI.  ``lft_c_allocations``
    and ``lft_c_bytes`` are the CURRENT counters (key_sa_recordxfer).  The
    ``accel_*`` fields are owned by the offload layer
    (freebsd_ipsec_offload.md §3.3): ``accel_ifps`` its handle list,
    ``accel_forget_tq`` its preallocated forget carrier, ``accel_ifname`` the
    interface restriction from SADB_X_EXT_IF_HW_OFFL (None = any),
    ``accel_flags`` SADB_KEY_ACCEL_INST/DEINST, ``accel_lft_sw`` the software
    view [allocations, bytes], ``accel_hw_allocs`` / ``accel_hw_octets`` the
    driver-reported totals, ``accel_firstused``.  ``accel_ifflags`` keeps the
    ``flags`` of that extension (FreeBSD sends 0 and ignores them; the
    offload layer's opt-in "nofallback" extension reads bit 0x1).
    """

    spi: int
    seq: int = 0
    pid: int = 0
    sah: Optional[secashead] = None
    state: int = LARVAL
    flags: int = 0
    ivlen: int = 0
    alg_auth: int = 0
    alg_enc: int = 0
    alg_comp: int = 0
    key_auth: Optional[seckey] = None
    key_enc: Optional[seckey] = None
    replay: Optional[secreplay] = None
    natt: Optional[secnatt] = None
    tdb_xform: Optional[str] = None
    lft_c_allocations: int = 0
    lft_c_bytes: int = 0
    lft_h: Optional[seclifetime] = None
    lft_s: Optional[seclifetime] = None
    created: int = 0
    firstused: int = 0
    cntr: int = 0
    refcnt: int = 1
    # offload (IPSEC_OFFLOAD) fields
    accel_ifps: list[Any] = attrs.Factory(list)
    accel_forget_tq: Any = None
    accel_ifname: Optional[str] = None
    accel_ifflags: int = 0
    accel_flags: int = 0
    accel_lft_sw: list[int] = attrs.Factory(lambda: [0, 0])
    accel_hw_allocs: int = 0
    accel_hw_octets: int = 0
    accel_firstused: int = 0

    def __repr__(self) -> str:
        st = SADB_SASTATE(self.state).name if 0 <= self.state <= 3 else self.state
        return f"<secasvar spi={self.spi:#x} state={st} seq={self.seq}>"


@attrs.define(slots=True, eq=False)
class ipsecrequest:
    """struct ipsecrequest: the SA index to look for and the level.

    ``saidx.src`` / ``saidx.dst`` are empty sockaddrs (sa_len 0) when the
    request carried no addresses (transport mode).
    """

    saidx: secasindex
    level: int


@attrs.define(slots=True, eq=False)
class ipsec_accel_adddel_sp_tq:
    """struct ipsec_accel_adddel_sp_tq: the one-shot scheduling flag and the
    offload layer's task carrier."""

    adddel_scheduled: int = 0
    adddel_task: Any = None
    adddel_vnet: Any = None


@attrs.define(slots=True, eq=False)
class secpolicy:
    """struct secpolicy (ipsec.h), offload fields included.

    ``spidx`` is a ``pfkey.spd.SecPolicyIndex``; ``req`` the ipsecrequests
    (``tcount`` = len); ``policy`` the IPSEC_POLICY type; ``state`` an
    IPSEC_SPSTATE.  ``lifetime`` / ``validtime`` are durations (0 = none).
    ``accel_ifps`` / ``accel_add_tq`` / ``accel_del_tq`` /
    ``ipsec_accel_add_sp_inp`` / ``accel_ifname`` belong to the offload layer
    (freebsd_ipsec_offload.md §3.3, §6.3).
    """

    spidx: Any
    policy: int
    priority: int = 0
    id: int = 0
    req: list[ipsecrequest] = attrs.Factory(list)
    state: int = IPSEC_SPSTATE_LARVAL
    refcnt: int = 1
    created: int = 0
    lastused: int = 0
    lifetime: int = 0
    validtime: int = 0
    accel_ifps: list[Any] = attrs.Factory(list)
    accel_add_tq: ipsec_accel_adddel_sp_tq = attrs.Factory(ipsec_accel_adddel_sp_tq)
    accel_del_tq: ipsec_accel_adddel_sp_tq = attrs.Factory(ipsec_accel_adddel_sp_tq)
    ipsec_accel_add_sp_inp: Any = None
    accel_ifname: Optional[str] = None

    @property
    def tcount(self) -> int:
        return len(self.req)

    def __repr__(self) -> str:
        return f"<secpolicy id={self.id} dir={self.spidx.dir} prio={self.priority} state={self.state}>"


@attrs.define(slots=True, eq=False)
class secacq:
    """struct secacq: an ACQUIRE blocking entry."""

    saidx: secasindex
    seq: int
    created: int
    count: int = 0


@attrs.define(slots=True, eq=False)
class secspacq:
    """struct secspacq: an SPDACQUIRE blocking entry."""

    spidx: Any
    created: int
    count: int = 0


# ---------------------------------------------------------------------------
# State machines, one table each
# ---------------------------------------------------------------------------

class SAEvent(enum.Enum):
    """What moves an SA, named after the key.c function doing it."""

    ADD = "key_newsav(SADB_ADD)"              # created LARVAL, set MATURE at once
    UPDATE = "key_update"                     # LARVAL/MATURE/DYING -> MATURE
    SOFT_EXPIRE = "key_flush_sad(soft)"       # MATURE -> DYING
    HARD_EXPIRE = "key_flush_sad(hard)"       # MATURE/DYING -> DEAD
    LARVAL_EXPIRE = "key_flush_sad(larval)"   # LARVAL -> DEAD, silently
    DELETE = "key_unlinksav"                  # any linked SA -> DEAD
    DELETE_ALL = "key_delete_all"             # alive -> DEAD
    FLUSH = "key_flush"                       # any linked SA -> DEAD
    CLONE = "key_updateaddresses"             # the replaced SA -> DEAD
    CLONED = "key_updateaddresses(new)"       # the clone is born MATURE


#: (state, event) -> new state.  GETSPI creates an SA in LARVAL (the
#: constructor's default); everything else is a row here.
SA_STATE_TABLE: dict[tuple[int, SAEvent], int] = {
    (LARVAL, SAEvent.ADD): MATURE,
    (LARVAL, SAEvent.UPDATE): MATURE,
    (MATURE, SAEvent.UPDATE): MATURE,
    (DYING, SAEvent.UPDATE): MATURE,
    (MATURE, SAEvent.SOFT_EXPIRE): DYING,
    (MATURE, SAEvent.HARD_EXPIRE): DEAD,
    (DYING, SAEvent.HARD_EXPIRE): DEAD,
    (LARVAL, SAEvent.LARVAL_EXPIRE): DEAD,
    (LARVAL, SAEvent.DELETE): DEAD,
    (MATURE, SAEvent.DELETE): DEAD,
    (DYING, SAEvent.DELETE): DEAD,
    (MATURE, SAEvent.DELETE_ALL): DEAD,
    (DYING, SAEvent.DELETE_ALL): DEAD,
    (LARVAL, SAEvent.FLUSH): DEAD,
    (MATURE, SAEvent.FLUSH): DEAD,
    (DYING, SAEvent.FLUSH): DEAD,
    (MATURE, SAEvent.CLONE): DEAD,
    (DYING, SAEvent.CLONE): DEAD,
    (LARVAL, SAEvent.CLONED): MATURE,
    (MATURE, SAEvent.CLONED): MATURE,
    (DYING, SAEvent.CLONED): MATURE,
}


def sa_next_state(state: int, event: SAEvent) -> int:
    """The state ``event`` leads to from ``state``; raises if impossible."""
    new = SA_STATE_TABLE.get((state, event))
    if new is None:
        raise StateTransitionError(f"SA in state {state} cannot take {event.value}")
    return new


class SPEvent(enum.Enum):
    INSERT = "key_insertsp"                   # LARVAL -> ALIVE (global SPD)
    REGISTER_IFNET = "key_register_ifnet"     # LARVAL -> IFNET
    DETACH = "key_detach"                     # ALIVE -> DEAD
    FLUSH = "key_spdflush"                    # ALIVE -> DEAD
    EXPIRE = "key_flush_spd"                  # ALIVE -> DEAD
    UNREGISTER_IFNET = "key_unregister_ifnet"  # IFNET -> DEAD


SP_STATE_TABLE: dict[tuple[int, SPEvent], int] = {
    (IPSEC_SPSTATE_LARVAL, SPEvent.INSERT): IPSEC_SPSTATE_ALIVE,
    (IPSEC_SPSTATE_LARVAL, SPEvent.REGISTER_IFNET): IPSEC_SPSTATE_IFNET,
    (IPSEC_SPSTATE_ALIVE, SPEvent.DETACH): IPSEC_SPSTATE_DEAD,
    (IPSEC_SPSTATE_ALIVE, SPEvent.FLUSH): IPSEC_SPSTATE_DEAD,
    (IPSEC_SPSTATE_ALIVE, SPEvent.EXPIRE): IPSEC_SPSTATE_DEAD,
    (IPSEC_SPSTATE_IFNET, SPEvent.UNREGISTER_IFNET): IPSEC_SPSTATE_DEAD,
}


def sp_next_state(state: int, event: SPEvent) -> int:
    new = SP_STATE_TABLE.get((state, event))
    if new is None:
        raise StateTransitionError(f"SP in state {state} cannot take {event.value}")
    return new


# ---------------------------------------------------------------------------
# The per-vnet databases
# ---------------------------------------------------------------------------

class KeyDB:
    """The SAD, SPD, ACQ and registration tables of one vnet, with their locks.

    Locks (one per FreeBSD lock modelled; every one may be taken from any
    thread -- PF_KEY senders, the timer, the datapath):

    * ``sahtree_lock`` -- rmlock "sahtree": V_sahtree, the SPI and address
      hashes and every SA's state.  An RLock: key.c's read and write sides
      are both modelled as exclusive, and helpers re-enter it.
    * ``sptree_lock`` -- rmlock "sptree": V_sptree, V_sptree_ifnet, V_sphashtbl.
    * ``spi_alloc_lock`` -- sx "spialloc": serialises SPI choice + insertion
      (key_getspi, key_add) so two senders cannot take the same SPI.
    * ``acq_lock`` -- mtx "acqtree": V_acqtree and its seq / saidx indexes.
    * ``spacq_lock`` -- mtx "spacqtree".
    * ``regtree_lock`` -- mtx "regtree": V_regtree and each keycb's
      ``kp_registered`` counter.

    Lock order (as in key.c): spi_alloc -> sahtree -> keysock; sptree ->
    keysock; acq, spacq, regtree are leaves.
    """

    def __init__(self, spd_tree_factory: Any) -> None:
        self.sahtree_lock = threading.RLock()
        self.sptree_lock = threading.RLock()
        self.spi_alloc_lock = threading.Lock()
        self.acq_lock = threading.Lock()
        self.spacq_lock = threading.Lock()
        self.regtree_lock = threading.Lock()
        # SAD
        self.sahtree: dict[secashead, None] = {}          # V_sahtree (head at end)
        self.sahaddrhash: dict[tuple[Any, ...], list[secashead]] = {}  # head first
        self.savhash: dict[int, secasvar] = {}             # V_savhashtbl by SPI
        # SPD: index 0 (IPSEC_DIR_ANY) exists and stays empty, as in key.c
        self.sptree = [spd_tree_factory() for _ in range(IPSEC_DIR.MAX)]
        self.sptree_ifnet = [spd_tree_factory() for _ in range(IPSEC_DIR.MAX)]
        self.sphash: dict[int, secpolicy] = {}             # V_sphashtbl by id
        self.policy_id = 0                                 # V_policy_id
        self.sp_genid = 0                                  # V_sp_genid
        #: Model addition (no key.c counterpart): bumped whenever the answer
        #: of key_allocsa_policy could change -- an SA enters or leaves an
        #: alive list, changes state, a SAH is linked or unlinked,
        #: net.key.preferred_oldsa is set.  Datapath caches compare it.
        self.sad_genid = 0
        # ACQ
        self.acqtree: dict[secacq, None] = {}              # V_acqtree
        self.acqseqhash: dict[int, list[secacq]] = {}      # head first
        self.acqaddrhash: dict[tuple[Any, ...], list[secacq]] = {}
        self.acq_seq = 0                                   # V_acq_seq
        self.spacqtree: list[secspacq] = []
        # registrations: satype -> sockets, head first (LIST_INSERT_HEAD)
        self.regtree: list[list[Any]] = [[] for _ in range(13)]

    # -- SAD linkage helpers (caller holds sahtree_lock) --------------------

    def _link_sah(self, sah: secashead) -> None:
        self.sahtree[sah] = None
        self.sahaddrhash.setdefault(sah.addrkey, []).insert(0, sah)
        sah.state = MATURE
        self.sad_genid += 1

    def _unlink_sah(self, sah: secashead) -> None:
        self.sahtree.pop(sah, None)
        bucket = self.sahaddrhash.get(sah.addrkey)
        if bucket is not None:
            try:
                bucket.remove(sah)
            except ValueError:
                pass
            if not bucket:
                del self.sahaddrhash[sah.addrkey]
        sah.state = DEAD
        self.sad_genid += 1

    def _find_sah(self, saidx: secasindex, flag: int = CMP_MODE_REQID) -> Optional[secashead]:
        """key_getsah: the first SAH of the address bucket matching ``flag``."""
        bucket = self.sahaddrhash.get(saidx.addrkey)
        if bucket:
            for sah in bucket:
                if key_cmpsaidx(sah.saidx, saidx, flag):
                    return sah
        return None

    def iter_sav(self) -> Iterator[secasvar]:
        """Every linked SA: SAHs head first, LARVAL then alive, head first."""
        for sah in reversed(list(self.sahtree)):
            yield from reversed(list(sah.savtree_larval))
            yield from reversed(list(sah.savtree_alive))

    def iter_sp(self) -> Iterator[secpolicy]:
        for d in range(IPSEC_DIR.MAX):
            yield from self.sptree[d]
            yield from self.sptree_ifnet[d]

    # -- invariants ------------------------------------------------------------

    def _check(self) -> None:
        """Assert every cross-index invariant of the databases.

        Raises AssertionError naming the first broken one.  Takes the locks,
        so it can run while other threads use the kernel.
        """
        with self.spi_alloc_lock, self.sahtree_lock:
            self._check_sad()
        with self.sptree_lock:
            self._check_spd()
        with self.acq_lock:
            self._check_acq()

    def _check_sad(self) -> None:
        seen: set[int] = set()
        nsav = 0
        for sah in self.sahtree:
            assert sah.state == MATURE, f"SAH {sah.saidx} in sahtree has state {sah.state}"
            assert sah.addrkey == sah.saidx.addrkey, "SAH address key out of date"
            bucket = self.sahaddrhash.get(sah.addrkey)
            assert bucket is not None and bucket.count(sah) == 1, \
                f"SAH {sah.saidx} not (exactly once) in its address hash bucket"
            for sav, want in [(s, (LARVAL,)) for s in sah.savtree_larval] + \
                             [(s, (MATURE, DYING)) for s in sah.savtree_alive]:
                nsav += 1
                assert sav.state in want, f"{sav!r} in the wrong list of its SAH"
                assert sav.sah is sah, f"{sav!r} has a stale SAH back pointer"
                assert self.savhash.get(sav.spi) is sav, f"{sav!r} missing from SPI hash"
                assert sav.spi not in seen, f"SPI {sav.spi:#x} linked twice"
                seen.add(sav.spi)
        assert nsav == len(self.savhash), \
            f"SPI hash holds {len(self.savhash)} SAs but SAHs link {nsav}"
        for spi, sav in self.savhash.items():
            assert sav.spi == spi, f"{sav!r} hashed under {spi:#x}"
            assert sav.state != DEAD, f"DEAD {sav!r} reachable through the SPI hash"
        nb = 0
        for key, bucket in self.sahaddrhash.items():
            assert bucket, "empty address hash bucket kept"
            for sah in bucket:
                nb += 1
                assert sah.addrkey == key and sah in self.sahtree, \
                    f"address hash holds unlinked SAH {sah.saidx}"
        assert nb == len(self.sahtree), "address hash and sahtree disagree"

    def _check_spd(self) -> None:
        total = 0
        sp: secpolicy  # the SPD trees are untyped containers of secpolicy
        for d in range(IPSEC_DIR.MAX):
            prev: Optional[secpolicy] = None
            for sp in self.sptree[d]:
                total += 1
                assert sp.state == IPSEC_SPSTATE_ALIVE, f"{sp!r} in sptree not ALIVE"
                assert sp.spidx.dir == d, f"{sp!r} in sptree[{d}]"
                assert self.sphash.get(sp.id) is sp, f"{sp!r} missing from the id hash"
                assert prev is None or prev.priority <= sp.priority, \
                    f"priority order broken in sptree[{d}]: {prev!r} before {sp!r}"
                prev = sp
            assert len(self.sptree[d]) == sum(1 for _ in self.sptree[d])
            for sp in self.sptree_ifnet[d]:
                total += 1
                assert sp.state == IPSEC_SPSTATE_IFNET, f"{sp!r} in sptree_ifnet not IFNET"
                assert self.sphash.get(sp.id) is sp, f"{sp!r} missing from the id hash"
        assert total == len(self.sphash), \
            f"id hash holds {len(self.sphash)} SPs but the trees hold {total}"
        for pid, sp in self.sphash.items():
            assert sp.id == pid and pid != 0, f"{sp!r} hashed under id {pid}"
            assert sp.state != IPSEC_SPSTATE_DEAD, f"DEAD {sp!r} reachable by id"

    def _check_acq(self) -> None:
        for acq in self.acqtree:
            assert acq.seq != 0, "ACQ entry with seq 0"
            bucket = self.acqaddrhash.get(acq.saidx.addrkey)
            assert bucket is not None and acq in bucket, "ACQ entry missing from address hash"
            sbucket = self.acqseqhash.get(acq.seq)
            assert sbucket is not None and acq in sbucket, "ACQ entry missing from seq hash"
        for index in (self.acqaddrhash, self.acqseqhash):
            n = sum(len(b) for b in index.values())
            assert n == len(self.acqtree), "ACQ hashes and list disagree"
            assert all(index.values()), "empty ACQ hash bucket kept"


__all__ = [
    "LARVAL", "MATURE", "DYING", "DEAD",
    "IPSEC_SPSTATE_DEAD", "IPSEC_SPSTATE_LARVAL", "IPSEC_SPSTATE_ALIVE",
    "IPSEC_SPSTATE_PCB", "IPSEC_SPSTATE_IFNET", "SADB_KEY_ACCEL_INST",
    "SADB_KEY_ACCEL_DEINST", "IPSEC_NATT_F_OAI", "IPSEC_NATT_F_OAR",
    "CMP_HEAD", "CMP_MODE_REQID", "CMP_REQID", "CMP_EXACTLY",
    "StateTransitionError", "sa_key", "sa_key_port", "sa_noport", "sa_bytes",
    "sa_from_raw", "key_checksockaddrs", "full_plen", "secasindex", "key_cmpsaidx",
    "seclifetime", "seckey", "secreplay", "secnatt", "secashead", "secasvar",
    "ipsecrequest", "ipsec_accel_adddel_sp_tq", "secpolicy", "secacq", "secspacq",
    "SAEvent", "SA_STATE_TABLE", "sa_next_state", "SPEvent", "SP_STATE_TABLE",
    "sp_next_state", "KeyDB",
]
