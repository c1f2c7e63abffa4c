"""The key engine as its handler modules see it: the type of ``self`` in
``key_sa``, ``key_saval``, ``key_spd``, ``key_acquire`` and ``key_timer``.

Those modules are mixins of :class:`pfkey.key.Key` (key.c is one file; here
it is split by concept) and reach each other, the databases of
:class:`pfkey.keydb.KeyDB` and Key's sysctls through ``self``.  A mixin
cannot name ``Key`` as its self type (Key is a subclass of the mixin, not a
supertype), so ``self`` is this Protocol: every attribute and method the
handlers use, with Key's own types.  Key is checked against it wherever a
handler is called on a Key.  Typing only: nothing imports this module at run
time, and a member used by a handler must be added here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional, Protocol

if TYPE_CHECKING:  # pragma: no cover
    import random
    import threading

    from .clock import Clock
    from .hooks import AccelHooks
    from .key_msg import RawExt, sadb_msghdr
    from .keydb import (
        SAEvent, SPEvent, secacq, secashead, secasindex, secasvar, secpolicy, secspacq,
    )
    from .keysock import KeySocket


class KeyEngine(Protocol):
    """What the key.c handler mixins use of :class:`pfkey.key.Key`."""

    # -- state: KeyDB's databases and locks, Key's sysctls and collaborators

    acq_lock: threading.Lock
    acq_seq: int
    acqaddrhash: dict[tuple[Any, ...], list[secacq]]
    acqseqhash: dict[int, list[secacq]]
    acqtree: dict[secacq, None]
    ah_keymin: int
    auto_reqid: int
    blockacq_count: int
    blockacq_lifetime: int
    clock: Clock
    esp_auth: int
    esp_keymin: int
    hooks: AccelHooks
    larval_lifetime: int
    policy_id: int
    preferred_oldsa: int
    quirks: frozenset[str]
    regtree: list[list[Any]]
    regtree_lock: threading.Lock
    rng: random.Random
    sad_genid: int
    sahaddrhash: dict[tuple[Any, ...], list[secashead]]
    sahtree: dict[secashead, None]
    sahtree_lock: threading.RLock
    savhash: dict[int, secasvar]
    sp_genid: int
    spacq_lock: threading.Lock
    spacqtree: list[secspacq]
    sphash: dict[int, secpolicy]
    spi_alloc_lock: threading.Lock
    spi_maxval: int
    spi_minval: int
    spi_trycnt: int
    sptree: list[Any]
    sptree_ifnet: list[Any]
    sptree_lock: threading.RLock

    # keydb.KeyDB
    def _find_sah(self, saidx: secasindex, flag: int = ...) -> Optional[secashead]: ...
    def _link_sah(self, sah: secashead) -> None: ...
    def _unlink_sah(self, sah: secashead) -> None: ...

    # key.Key
    def key_sendup_mbuf(self, so: Optional[KeySocket], data: bytes, target: int) -> int: ...

    # key_sa.KeySAMixin
    def _alive_pick(self, sah: secashead) -> Optional[secasvar]: ...
    def _sav_transition(self, sav: secasvar, event: SAEvent) -> None: ...
    def key_delete_all(self, so: Optional[KeySocket], mhp: sadb_msghdr,
                       saidx: secasindex) -> int: ...
    def key_getsav_tcpmd5(self, saidx: secasindex,
                          spi: Optional[int]) -> tuple[Optional[secasvar], int]: ...
    def key_setdumpsa(self, sav: secasvar, mtype: int, satype: int, seq: int, pid: int,
                      extra_ref: int = ...) -> Optional[bytes]: ...
    def key_unlinksav(self, sav: secasvar) -> None: ...
    def key_updateaddresses(self, so: Optional[KeySocket], mhp: sadb_msghdr, sav: secasvar,
                            saidx: secasindex) -> int: ...

    # key_saval.KeySAValMixin
    def _key_setsaval(self, sav: secasvar, mhp: sadb_msghdr) -> None: ...
    def key_cleansav(self, sav: secasvar) -> None: ...
    def key_do_getnewspi(self, spirange: Any, saidx: secasindex) -> int: ...
    def key_newsav(self, mhp: sadb_msghdr, saidx: secasindex, spi: int) -> secasvar: ...
    def key_setnatt(self, sav: secasvar, mhp: sadb_msghdr) -> None: ...
    def key_setsaval(self, sav: secasvar, mhp: sadb_msghdr) -> None: ...
    def key_updatelifetimes(self, sav: secasvar, mhp: sadb_msghdr) -> None: ...

    # key_spd.KeySPDMixin
    def _spd_check_common(self, mhp: sadb_msghdr) -> Any: ...
    def key_detach(self, sp: secpolicy, event: SPEvent = ...) -> bool: ...
    def key_getnewspid(self) -> int: ...
    def key_insertsp(self, newsp: secpolicy) -> None: ...
    def key_msg2sp(self, mhp: sadb_msghdr) -> secpolicy: ...
    def key_newreqid(self) -> int: ...
    def key_setdumpsp(self, sp: secpolicy, mtype: int, seq: int, pid: int,
                      extra_ref: int = ...) -> bytes: ...
    def key_sp2msg(self, sp: secpolicy) -> list[RawExt]: ...
    def key_spdexpire(self, sp: secpolicy) -> int: ...

    # key_acquire.KeyAcquireMixin
    def _acq_byseq(self, seq: int) -> Optional[secacq]: ...
    def _acq_unlink(self, acq: secacq) -> None: ...
    def key_acqdone(self, saidx: secasindex, seq: int) -> int: ...
    def key_acqreset(self, seq: int) -> int: ...
    def key_acquire(self, saidx: secasindex, sp: Optional[secpolicy]) -> int: ...
    def key_getacq(self, saidx: secasindex) -> int: ...
    def key_newacq(self, saidx: secasindex) -> int: ...

    # key_timer.KeyTimerMixin
    def key_expire(self, sav: secasvar, hard: bool) -> int: ...
    def key_flush_acq(self, now: int) -> None: ...
    def key_flush_sad(self, now: int) -> None: ...
    def key_flush_spacq(self, now: int) -> None: ...
    def key_flush_spd(self, now: int) -> None: ...


__all__ = ["KeyEngine"]
