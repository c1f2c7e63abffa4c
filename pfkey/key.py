"""The key engine: FreeBSD's ``sys/netipsec/key.c`` for one vnet.

:class:`Key` is the kernel's key state -- the SAD, the SPD, the ACQUIRE
table, the registrations, the ``net.key.*`` sysctls and the offload hook
table -- and the entry points everything else calls:

* ``key_parse(so, data)`` -- a PF_KEY message written to socket ``so``
  (``KeySocket.send`` calls it): ``pfkey.decode`` makes every pre-dispatch
  check of keysock.c/key.c (send-time failures raise, reply-time failures
  become key_senderror's echo), then ``key_typesw`` dispatches to one
  handler per message type, named after key.c; a type without a handler is
  answered EINVAL.  Returns key_sendup_mbuf's result for the sender (0, or
  ENOBUFS when the sender's receive buffer was full).
* ``key_timehandler(now)`` -- the once-a-second callout (``key_timer``).
* packet-side lookups: ``key_allocsp`` (SPD, by direction),
  ``key_allocsa_policy`` (outbound SA, preferred_oldsa, ACQUIRE when none),
  ``key_allocsa`` (inbound SA by dst, proto, SPI), ``key_sa_recordxfer``.
* ``key_register_ifnet`` / ``key_unregister_ifnet`` for if_ipsec policies.

The handlers live in concept modules mixed into :class:`Key`:
``key_sa`` (SAD messages), ``key_saval`` (SA creation and
validation), ``key_spd`` (SPD messages), ``key_acquire``
(ACQUIRE, REGISTER), ``key_timer`` (expiry); ``keydb`` holds the objects,
the state tables, the locks and ``_check()``.

Quirks: FreeBSD's known bugs are modelled correctly by default; naming one
in ``quirks`` reproduces FreeBSD instead (freebsd_ipsec_offload.md §18):

* ``"sp2msg_ifhwoffl_overlap"`` -- key_sp2msg writes the SP's IF_HW_OFFL
  extension over its first ipsecrequest (and omits it for non-IPsec SPs);
* ``"updateaddresses_ifname"`` -- key_updateaddresses copies the interface
  name the wrong way, so the clone's ``accel_ifname`` is garbage (modelled
  as the empty string).
"""

from __future__ import annotations

import errno as _errno
import random
from typing import Any, Callable, Iterable, Optional

from .clock import Clock, SystemClock
from .errors import Delivery, PfkeyError, to_wire
from .extensions import Sockaddr
from .hooks import NO_HOOKS, AccelHooks
from .key_acquire import KeyAcquireMixin
from .key_msg import sadb_msghdr
from .key_sa import KeySAMixin, key_proto2satype, key_satype2proto
from .key_saval import KeySAValMixin
from .key_spd import KeySPDMixin
from .key_timer import KeyTimerMixin
from .keydb import LARVAL, KeyDB, sa_key, secasindex, secasvar, secpolicy
from .keysock import KEY_SENDUP_ONE, KeySockList, KeySocket
from .message import decode, set_errno
from .pfkeyv2 import SADB
from .spd import SecPolicyIndex, SPDTree

Handler = Callable[[Optional[KeySocket], sadb_msghdr], int]

#: net.key.* sysctl name -> Key attribute (keysock.c's two included).
SYSCTLS: dict[str, str] = {
    "net.key.debug": "debug",
    "net.key.spi_trycnt": "spi_trycnt",
    "net.key.spi_minval": "spi_minval",
    "net.key.spi_maxval": "spi_maxval",
    "net.key.int_random": "int_random",
    "net.key.larval_lifetime": "larval_lifetime",
    "net.key.blockacq_count": "blockacq_count",
    "net.key.blockacq_lifetime": "blockacq_lifetime",
    "net.key.esp_auth": "esp_auth",
    "net.key.esp_keymin": "esp_keymin",
    "net.key.ah_keymin": "ah_keymin",
    "net.key.preferred_oldsa": "preferred_oldsa",
    "net.key.spdcache.maxentries": "spdcache_maxentries",
    "net.key.spdcache.threshold": "spdcache_threshold",
    "net.key.sendspace": "sendspace",
    "net.key.recvspace": "recvspace",
}

KNOWN_QUIRKS = frozenset({"sp2msg_ifhwoffl_overlap", "updateaddresses_ifname"})


class Key(KeySAMixin, KeySAValMixin, KeySPDMixin, KeyAcquireMixin, KeyTimerMixin, KeyDB):
    """One vnet's PF_KEY kernel state (key.c + keysock.c's socket list).

    ``clock`` gives time_second (default: the wall clock); ``hooks`` the
    offload hook table (default: no-ops); ``rng`` the source of random
    SPIs (seed it for reproducible tests); ``quirks`` FreeBSD bugs to
    reproduce (see the module docstring).
    """

    def __init__(self, clock: Optional[Clock] = None, *, hooks: Optional[AccelHooks] = None,
                 rng: Optional[random.Random] = None, quirks: Iterable[str] = ()) -> None:
        KeyDB.__init__(self, SPDTree)
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.hooks: AccelHooks = hooks if hooks is not None else NO_HOOKS
        self.rng = rng if rng is not None else random.Random()
        self.quirks = frozenset(quirks)
        unknown = self.quirks - KNOWN_QUIRKS
        if unknown:
            raise ValueError(f"unknown quirks: {sorted(unknown)}")
        self.keysock = KeySockList()
        # net.key.* sysctls with FreeBSD's defaults
        self.debug = 0
        self.spi_trycnt = 1000
        self.spi_minval = 0x100
        self.spi_maxval = 0x0FFFFFFF
        self.int_random = 60
        self.larval_lifetime = 30
        self.blockacq_count = 10
        self.blockacq_lifetime = 20
        self.esp_auth = 0
        self.esp_keymin = 256
        self.ah_keymin = 128
        self._preferred_oldsa = 1
        self.spdcache_maxentries = 0     # the SPD cache is not modelled: the
        self.spdcache_threshold = 32     # indexed SPD makes it unnecessary
        self.sendspace = 8192
        self.recvspace = 8192
        self.auto_reqid = 0x3FFF + 1     # key_newreqid's counter
        self.key_typesw: list[Optional[Handler]] = self._build_typesw()

    @property
    def preferred_oldsa(self) -> int:
        """net.key.preferred_oldsa (setting it changes which SA
        key_allocsa_policy picks, so it bumps ``sad_genid``)."""
        return self._preferred_oldsa

    @preferred_oldsa.setter
    def preferred_oldsa(self, value: int) -> None:
        self._preferred_oldsa = int(value)
        self.sad_genid += 1

    def _build_typesw(self) -> list[Optional[Handler]]:
        """key_typesw: message type -> handler (None: answered EINVAL)."""
        table: list[Optional[Handler]] = [None] * (max(SADB) + 1)
        for mtype, handler in (
                (SADB.GETSPI, self.key_getspi), (SADB.UPDATE, self.key_update),
                (SADB.ADD, self.key_add), (SADB.DELETE, self.key_delete),
                (SADB.GET, self.key_get), (SADB.ACQUIRE, self.key_acquire2),
                (SADB.REGISTER, self.key_register), (SADB.FLUSH, self.key_flush),
                (SADB.DUMP, self.key_dump), (SADB.X_PROMISC, self.key_promisc),
                (SADB.X_SPDUPDATE, self.key_spdadd), (SADB.X_SPDADD, self.key_spdadd),
                (SADB.X_SPDDELETE, self.key_spddelete), (SADB.X_SPDGET, self.key_spdget),
                (SADB.X_SPDDUMP, self.key_spddump), (SADB.X_SPDFLUSH, self.key_spdflush),
                (SADB.X_SPDSETIDX, self.key_spdadd),
                (SADB.X_SPDDELETE2, self.key_spddelete2)):
            table[mtype] = handler
        return table

    # -- configuration ---------------------------------------------------------

    def set_accel_hooks(self, hooks: Optional[AccelHooks]) -> None:
        """Install (or with None remove) the offload hook table -- what
        ipsec_offload.c's SYSINIT / SYSUNINIT do to the ``_p`` pointers."""
        self.hooks = hooks if hooks is not None else NO_HOOKS

    # key.c's exported wrappers around driver-callable hooks: a driver calls
    # these on the kernel, which forwards to whatever offload layer is attached.

    def ipsec_accel_on_ifdown(self, ifp: Any) -> None:
        self.hooks.ipsec_accel_on_ifdown(ifp)

    def ipsec_accel_drv_sa_lifetime_update(self, sav: secasvar, ifp: Any, drv_spi: int,
                                           octets: int, allocs: int) -> None:
        self.hooks.ipsec_accel_drv_sa_lifetime_update(sav, ifp, drv_spi, octets, allocs)

    def ipsec_accel_drv_sa_lifetime_fetch(self, sav: secasvar, ifp: Any,
                                          drv_spi: int) -> tuple[int, int, int]:
        """(errno, octets, allocs); EOPNOTSUPP without an offload layer."""
        return self.hooks.ipsec_accel_drv_sa_lifetime_fetch(sav, ifp, drv_spi)

    def sysctl(self, name: str, value: Optional[int] = None) -> int:
        """Read (or set) a ``net.key.*`` sysctl; returns the old value."""
        attr = SYSCTLS.get(name)
        if attr is None:
            raise KeyError(f"unknown sysctl {name}")
        old = int(getattr(self, attr))
        if value is not None:
            setattr(self, attr, int(value))
        return old

    def socket(self, **kwargs: Any) -> KeySocket:
        """socket(PF_KEY, SOCK_RAW, PF_KEY_V2) on this kernel."""
        return KeySocket(self, **kwargs)

    # -- keysock glue -------------------------------------------------------------

    def key_sendup_mbuf(self, so: Optional[KeySocket], data: bytes, target: int) -> int:
        return self.keysock.key_sendup_mbuf(so, data, target)

    def key_senderror(self, so: Optional[KeySocket], data: bytes | bytearray,
                      code: int) -> int:
        """key_senderror: the whole request back to its sender, errno set."""
        if so is None:
            return code
        return self.key_sendup_mbuf(so, set_errno(bytes(data), to_wire(code)), KEY_SENDUP_ONE)

    # -- key_parse ----------------------------------------------------------------

    def key_parse(self, so: Optional[KeySocket], data: bytes) -> int:
        """key_output + key_parse: check, dispatch, answer.

        Raises ``PfkeyError`` (delivery SEND) for failures FreeBSD reports
        from send(2); returns 0 or the errno of queuing the sender's copy.
        """
        try:
            msg = decode(data)
        except PfkeyError as exc:
            if exc.delivery is Delivery.SEND:
                raise
            return self.key_senderror(so, data, exc.errno)
        handler = self.key_typesw[msg.type]
        if handler is None:
            return self.key_senderror(so, data, _errno.EINVAL)
        mhp = sadb_msghdr(msg, data)
        try:
            return handler(so, mhp)
        except PfkeyError as exc:
            if exc.delivery is Delivery.SEND:
                raise
            return self.key_senderror(so, mhp.buf, exc.errno)

    key_output = key_parse

    # -- SADB_X_PROMISC -------------------------------------------------------------

    def key_promisc(self, so: Optional[KeySocket], mhp: sadb_msghdr) -> int:
        """key_promisc: header only toggles promiscuous mode (echo ALL);
        a longer message has its header stripped and the rest broadcast."""
        if len(mhp.buf) == 16:
            satype = mhp.msg.satype
            if so is None or satype not in (0, 1):
                raise PfkeyError("promiscuous mode is 0 or 1", errno=_errno.EINVAL)
            so.kp_promisc = satype
            return self.key_sendup_mbuf(so, bytes(mhp.header()), 1)
        return self.key_sendup_mbuf(so, bytes(mhp.buf[16:]), 1)

    # -- packet side ------------------------------------------------------------------

    def key_allocsa(self, dst: Sockaddr, proto: int, spi: int) -> Optional[secasvar]:
        """key_allocsa: the inbound SA for (dst, proto, spi); MATURE or DYING.

        Lock-free read of the SPI hash (key.c's rmlock read side; one dict
        lookup is atomic under the GIL).
        """
        sav = self.savhash.get(spi)
        if sav is None or sav.state == LARVAL:
            return None
        sah = sav.sah
        if sah is None or sah.saidx.proto != proto or sa_key(sah.saidx.dst) != sa_key(dst):
            return None
        return sav

    def key_sa_recordxfer(self, sav: secasvar, nbytes: int) -> None:
        """key_sa_recordxfer: count one packet of ``nbytes`` on the SA."""
        sav.lft_c_bytes += nbytes
        sav.lft_c_allocations += 1
        if sav.firstused == 0:
            sav.firstused = self.clock.now()

    def key_freesav(self, sav: secasvar) -> None:
        """Reference counts are not modelled (Python owns lifetimes)."""

    def key_freesp(self, sp: secpolicy) -> None:
        """Reference counts are not modelled (Python owns lifetimes)."""

    # -- introspection ----------------------------------------------------------------

    def sa_count(self) -> int:
        return len(self.savhash)

    def sp_count(self) -> int:
        return len(self.sphash)

    def key_getsavbyspi(self, spi: int) -> Optional[secasvar]:
        return self.savhash.get(spi)

    def key_getspbyid(self, spid: int) -> Optional[secpolicy]:
        return self.sphash.get(spid)

    def _check(self) -> None:
        """Every database invariant (keydb.KeyDB._check) plus the SPD index's."""
        KeyDB._check(self)
        with self.sptree_lock:
            for tree in self.sptree + self.sptree_ifnet:
                chk = getattr(tree, "_check", None)
                if chk is not None:
                    chk()
        with self.regtree_lock:
            for satype, reglist in enumerate(self.regtree):
                assert len(set(map(id, reglist))) == len(reglist), \
                    f"a socket registered twice for satype {satype}"
                for so in reglist:
                    assert not so.closed, "a closed socket is still registered"
                    assert so.kp_registered > 0, "registered socket with kp_registered 0"


__all__ = ["Key", "SYSCTLS", "KNOWN_QUIRKS", "key_satype2proto", "key_proto2satype",
           "SecPolicyIndex", "secasindex"]
