"""One host's IPsec datapath state: what ``sys/netipsec/ipsec.c`` keeps per
vnet (``V_ip4_*`` sysctls, ``V_def_policy``, the statistics) plus the
per-SA state FreeBSD hangs off ``struct secasvar`` after ``esp_init``
(``tdb_xform``, the cipher sessions, the replay state).

:class:`Ipsec` is attached to a :class:`ipsec_accel.host.Host` by the IP
layer (:mod:`ipsec_accel.ip`); the output and input paths
(:mod:`ipsec_accel.ipsec_output`, :mod:`ipsec_accel.ipsec_input`) take it
as their first argument.  It owns:

* the sysctls (:data:`SYSCTLS`): ``net.inet.esp.esp_enable``,
  ``net.inet.ipsec.def_policy``, ``esp_trans_deflev`` / ``esp_net_deflev``,
  ``check_policy_history``, ``dfbit``, ``ecn``, and the model's
  ``net.inet.ipsec.offload.mode`` / ``.tag_strategy``;
* :class:`SaCtx` per SA: the :class:`ipsec_accel.xform_esp.EspState` (built
  on first use), endpoints, NAT-T ports, the xform_history payload of its
  IN_DONE / OUT_DONE tags, per-SA packet counters by path.  The *same*
  EspState is handed to the host's NICs through ``nic.esp_state_factory``
  (``share_esp_state``, default on), so hardware and software continue one
  sequence-number space, one IV counter and one replay window: traffic that
  moves from a NIC to software (ifdown, ``-ipsec``) is neither refused as a
  replay nor sent with a reused AES-GCM nonce.  FreeBSD's hardware keeps its
  own counters and does not hand them back -- a deliberate departure;
  ``share_esp_state=False`` gives every NIC its own state;
* the offload **mode** (:data:`MODES`): ``auto`` (each NIC's preferred mode,
  ``if_softc.offload_modes[0]``), ``packet`` (FreeBSD inline offload),
  ``crypto`` (Linux crypto offload: the stack frames ESP, the NIC encrypts),
  ``software`` (never offload on output);
* the **tag strategy** (:mod:`ipsec_accel.accel_tag`);
* the SPD flow cache: the policy a packet selector maps to, valid while the
  SPD generation (``V_sp_genid``) is unchanged -- FreeBSD's
  ``net.key.spdcache`` idea, keyed by the header fields key_allocsp reads,
  so it returns exactly what key_allocsp returns (and still updates the
  policy's ``lastused``); and the memo of each request's SA
  (:meth:`Ipsec.allocsa_policy`), reused while key_allocsa_policy would
  provably return the same SA;
* the **output fast path** (``net.inet.ipsec.offload.fastpath``, model
  knob, default on): a per-flow memo of a *packet-offload* decision --
  policy, SA, SA context, the HANDLED handle and the largest packet that
  fits -- keyed by the header bytes the selector is made of
  (:class:`FastOut`; :mod:`ipsec_accel.ipsec_output` has the rules).
  FreeBSD's nearest relative is the inpcb policy cache (netipsec/ipsec.c:
  ``ipsec_cachepolicy`` fills ``inp_sp->sp_out`` for a connected socket,
  ``ipsec_getpcbpolicy`` uses it while ``inp_sp->genid`` equals
  ``key_getspgen()``); this memo is per flow rather than per socket, also
  checks the SAD generation (``Key.sad_genid``), the handle's list and
  flags and the interface capability on every packet, and holds only
  positive decisions, so everything else runs the full path;
* :class:`ipsec_accel.ipsecstat.Stats` (counter(9)-style per-thread slots).

Locks: ``_lock`` guards SA-context creation and the caches' rebuilds (the
datapath reads them lock-free: one dict lookup).  No lock is held across a
call into the key engine, the offload layer or a driver.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Callable, Final, Optional

from pfkey.extensions import Sockaddr
from pfkey.ipsec import IPSEC_LEVEL, IPSEC_MODE, IPSEC_POLICY
from pfkey.keydb import DEAD, DYING, MATURE, secpolicy
from pfkey.pfkeyv2 import SADB_SAFLAGS
from pfkey.spd import SecPolicyIndex

from .accel_tag import TAG_MTAG, TAG_STRATEGIES, TagStrategy, XformHistory, make_tag_strategy
from .if_vlan import vlan_trunkdev
from .ifnet import IFT_L2VLAN
from .ipsecstat import Stats
from .xform import KIND_CHACHA, KIND_GCM, XformInitError
from .xform_esp import EspState

if TYPE_CHECKING:  # pragma: no cover
    from pfkey.key import Key
    from pfkey.keydb import secasvar

    from .ip import IpLayer

__all__ = [
    "Ipsec", "SaCtx", "MODES", "MODE_AUTO", "MODE_PACKET", "MODE_CRYPTO", "MODE_SOFTWARE",
    "SYSCTLS", "M_DECRYPTED", "M_AUTHIPHDR", "TF2_IPSEC_TSO", "Inpcb", "FastOut",
]

MODE_AUTO: Final = "auto"
MODE_PACKET: Final = "packet"
MODE_CRYPTO: Final = "crypto"
MODE_SOFTWARE: Final = "software"
MODES: Final = (MODE_AUTO, MODE_PACKET, MODE_CRYPTO, MODE_SOFTWARE)

#: mbuf flags netinet6/ip6_var.h defines for IPsec (M_PROTO4 / M_PROTO5):
#: set by esp_input_cb / ah_input_cb, read by ipsec_in_reject.
M_AUTHIPHDR: Final = 0x00010000
M_DECRYPTED: Final = 0x00020000

#: netinet/tcp_var.h: ipsec_accel_output sets it on a TCP connection whose
#: packets are offloaded to a NIC that still does TSO on them.
TF2_IPSEC_TSO: Final = 0x00200000

_ESN: Final = int(SADB_SAFLAGS.X_SAFLAGS_ESN)
_TUNNEL: Final = int(IPSEC_MODE.TUNNEL)

#: sysctl name -> attribute of :class:`Ipsec`.
SYSCTLS: dict[str, str] = {
    "net.inet.esp.esp_enable": "esp_enable",
    "net.inet.ipsec.def_policy": "def_policy",
    "net.inet.ipsec.esp_trans_deflev": "esp_trans_deflev",
    "net.inet.ipsec.esp_net_deflev": "esp_net_deflev",
    "net.inet.ipsec.check_policy_history": "check_policy_history",
    "net.inet.ipsec.dfbit": "dfbit",
    "net.inet.ipsec.ecn": "ecn",
    "net.inet.ipsec.offload.mode": "mode",
    "net.inet.ipsec.offload.tag_strategy": "tag_strategy_name",
    "net.inet.ipsec.offload.fastpath": "fastpath",
}


class Inpcb:
    """What IPsec reads of a socket's protocol control block: the protocol
    (``inp_ip_p``; TCP connections have ``t_flags2``, where
    ipsec_accel_output keeps TF2_IPSEC_TSO).  A packet sent with an inpcb has
    its ports in the SPD lookup (ipsec4_get_ulp's ``needport``); one sent
    without (forwarded, raw) does not."""

    __slots__ = ("inp_ip_p", "t_flags2", "name")

    def __init__(self, proto: int = 17, name: str = "") -> None:
        self.inp_ip_p = proto
        self.t_flags2 = 0
        self.name = name

    @property
    def is_tcp(self) -> bool:
        return self.inp_ip_p == 6

    def __repr__(self) -> str:
        return f"<Inpcb proto={self.inp_ip_p} flags2={self.t_flags2:#x} {self.name}>"


class SaCtx:
    """Per-SA datapath state (see the module docstring).  ``esp`` is None
    when the SA's transform cannot be built (``noxform``).  Counters:
    ``out_packet`` / ``out_crypto`` / ``out_sw`` and ``in_packet`` /
    ``in_crypto`` / ``in_sw`` count packets by the path they took."""

    __slots__ = ("sav", "esp", "spi", "proto", "mode", "af", "src", "dst", "natt", "esn",
                 "crypto_ok", "xh", "outdone", "error", "framer", "opener", "pad", "out_packet", "out_crypto", "out_sw",
                 "in_packet", "in_crypto", "in_sw", "__weakref__")

    def __init__(self, sav: "secasvar", esp: Optional[EspState], error: str = "") -> None:
        saidx = sav.sah.saidx  # type: ignore[union-attr]
        self.sav = sav
        self.esp = esp
        self.error = error
        self.spi = int(sav.spi)
        self.proto = int(saidx.proto)
        self.mode = int(saidx.mode)
        self.af = int(saidx.dst.family)
        self.src = bytes(saidx.src.address_bytes) if saidx.src.sa_len else b""
        self.dst = bytes(saidx.dst.address_bytes) if saidx.dst.sa_len else b""
        n = sav.natt
        self.natt = (int(n.sport), int(n.dport)) if n is not None and (n.sport or n.dport) \
            else None
        self.esn = bool(sav.flags & _ESN)
        # Crypto offload needs an AEAD with an 8-byte counter IV (what the
        # NIC's engine can finish: AES-GCM, ChaCha20-Poly1305).
        self.crypto_ok = esp is not None and esp.enc.kind in (KIND_GCM, KIND_CHACHA)
        self.xh = XformHistory(saidx.dst, self.spi, self.proto, self.mode)
        self.outdone = self.xh
        self.framer: Any = None         # ipsec_output.CryptoFramer, on first use
        self.opener: Any = None         # ipsec_input.CryptoDoneOpener, on first use
        #: (hlen, blks, alen) of ipsec_accel_output_pad (ipsec_output._pad_consts).
        self.pad: Optional[tuple[int, int, int]] = None
        self.out_packet = self.out_crypto = self.out_sw = 0
        self.in_packet = self.in_crypto = self.in_sw = 0

    @property
    def tunnel(self) -> bool:
        return self.mode == _TUNNEL

    def counters(self) -> dict[str, int]:
        return {"out_packet": self.out_packet, "out_crypto": self.out_crypto,
                "out_sw": self.out_sw, "in_packet": self.in_packet,
                "in_crypto": self.in_crypto, "in_sw": self.in_sw}

    def __repr__(self) -> str:
        return f"<SaCtx spi={self.spi:#x} mode={self.mode} esp={self.esp!r}>"


class _SaEntry:
    """One request's saidx and the memo of :meth:`Ipsec.allocsa_policy`."""

    __slots__ = ("saidx", "sav", "addrkey", "bucket", "blen", "b0", "sah")

    def __init__(self, saidx: Any) -> None:
        self.saidx = saidx
        self.sav: Any = None
        self.addrkey: Any = None
        self.bucket: Any = None
        self.blen = 0
        self.b0: Any = None
        self.sah: Any = None


_ALIVE: Final = frozenset((MATURE, DYING))


class FastOut:
    """One flow's packet-offload decision (the output fast path, module
    docstring).  Valid while ``spgen`` / ``sadgen`` equal the key engine's
    generations, ``ifps`` is still the SA's handle list, the handle is
    HANDLED and the interface's capability is on; ``maxlen`` is the largest
    non-TSO packet that passes ipsec_accel_output's two size checks at
    ``mtu`` (both are monotonic in the length); ``minlen`` the shortest
    packet whose selector has the ports the key was made of."""

    __slots__ = ("ifp", "proto", "minlen", "mtu", "maxlen", "spgen", "sadgen", "sp", "sav",
                 "sctx", "h", "ifps", "drv_spi", "off")

    def __init__(self, ifp: Any, proto: int, minlen: int, mtu: int, maxlen: int, spgen: int,
                 sadgen: int, sp: secpolicy, sav: "secasvar", sctx: "SaCtx", h: Any,
                 off: Any) -> None:
        self.ifp = ifp
        self.proto = proto
        self.minlen = minlen
        self.mtu = mtu
        self.maxlen = maxlen
        self.spgen = spgen
        self.sadgen = sadgen
        self.sp = sp
        self.sav = sav
        self.sctx = sctx
        self.h = h
        self.ifps = sav.accel_ifps
        self.drv_spi = h.drv_spi
        self.off = off

    def __repr__(self) -> str:
        return (f"<FastOut spi={self.sctx.spi:#x} drv_spi={self.drv_spi} "
                f"if={getattr(self.ifp, 'if_xname', '?')} maxlen={self.maxlen}>")


def build_esp_state(sav: "secasvar") -> EspState:
    """esp_init for ``sav``: the transform the software path runs (and, when
    shared, the NIC's key context)."""
    saidx = sav.sah.saidx  # type: ignore[union-attr]
    return EspState(int(sav.spi), int(sav.alg_enc),
                    sav.key_enc.key if sav.key_enc is not None else b"",
                    int(sav.alg_auth), sav.key_auth.key if sav.key_auth is not None else b"",
                    flags=int(sav.flags),
                    replay=sav.replay.wsize if sav.replay is not None else 0,
                    mode=int(saidx.mode), af=int(saidx.dst.family))


class Ipsec:
    """A host's IPsec datapath state (module docstring).

    ``host``: the :class:`ipsec_accel.host.Host` (its ``key``, ``offload``
    and ``clock`` are read at use, so an offload layer attached later is
    seen).  ``tag_strategy`` and ``mode`` are the initial run-time choices.
    """

    def __init__(self, host: Any, *, tag_strategy: str = TAG_MTAG, mode: str = MODE_AUTO,
                 share_esp_state: bool = True, flow_cache: int = 65536,
                 fastpath: bool = True) -> None:
        self.host = host
        self.key = host.key
        self.stats = Stats()
        self.share_esp_state = share_esp_state
        # sysctls (FreeBSD defaults)
        self.esp_enable = 1
        self.def_policy = int(IPSEC_POLICY.NONE)
        self.esp_trans_deflev = int(IPSEC_LEVEL.USE)
        self.esp_net_deflev = int(IPSEC_LEVEL.USE)
        self.check_policy_history = 0
        self.dfbit = 0
        self.ecn = 0
        self._lock = threading.Lock()
        #: Output fast path (module docstring): header bytes -> FastOut, or
        #: None when switched off.  Replaced whole on invalidation.
        self.fast: Optional[dict[bytes, FastOut]] = {} if fastpath else None
        self.sactx_map: dict[Any, SaCtx] = {}
        self._sactx_sweep_at = 256
        self._mode = MODE_AUTO
        self._ifmode: dict[Any, Optional[str]] = {}
        self.tags: TagStrategy = make_tag_strategy(tag_strategy, host.name)
        self.tags.live = self._handle_live
        self.set_offload_mode(mode)
        # SPD flow cache: selector -> policy, for one SPD generation.
        self.flow_cache_max = flow_cache
        self._flows: dict[tuple[Any, ...], Optional[secpolicy]] = {}
        self._flows_gen = -1
        # dst address bytes -> Sockaddr (key_allocsa's dst), bounded.
        self._dst_sa: dict[bytes, Sockaddr] = {}
        # (sp, req idx, src, dst) -> the saidx ipsec4_allocsa crafts + SA memo.
        self._saidx: dict[tuple[Any, ...], _SaEntry] = {}
        self._saidx_gen = -1
        #: UDP ports input treats as ESP-in-UDP (RFC 3948; UDP_ENCAP sockets).
        self.natt_ports: frozenset[int] = frozenset((4500,))
        #: The IP layer (set by ipsec_accel.ip when it attaches).  Typed as
        #: what it is once attached -- the host builds its IpLayer right after
        #: this object, and nothing reads .ip before -- rather than Optional,
        #: which the per-packet paths would have to narrow on every use.
        self.ip: IpLayer = None  # type: ignore[assignment]

    # -- output fast path ---------------------------------------------------------------

    @property
    def fastpath(self) -> int:
        """net.inet.ipsec.offload.fastpath (model knob): 1 = memoise
        packet-offload decisions per flow, 0 = every packet takes the full
        path."""
        return int(self.fast is not None)

    @fastpath.setter
    def fastpath(self, value: Any) -> None:
        self.fast = {} if int(value) else None

    def invalidate_fast(self) -> None:
        """Forget every memoised decision (run-time choices changed)."""
        if self.fast is not None:
            self.fast = {}

    # -- run-time choices -------------------------------------------------------------

    @property
    def offload(self) -> Any:
        return self.host.offload

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        self.set_offload_mode(value)

    def set_offload_mode(self, mode: str) -> None:
        """``auto`` / ``packet`` / ``crypto`` / ``software`` (module
        docstring).  Applies to the next packet.  What a NIC does with
        *inbound* ESP is its own choice, made when it installs an SA
        (``offload_modes[0]`` then)."""
        if mode not in MODES:
            raise ValueError(f"unknown offload mode {mode!r}; one of {', '.join(MODES)}")
        self._mode = mode
        self._ifmode = {}
        self.invalidate_fast()

    @property
    def tag_strategy_name(self) -> str:
        return self.tags.name

    @tag_strategy_name.setter
    def tag_strategy_name(self, name: str) -> None:
        self.set_tag_strategy(name)

    def set_tag_strategy(self, name: str) -> TagStrategy:
        """Switch strategy (:data:`ipsec_accel.accel_tag.TAG_STRATEGIES`).
        Packets already tagged keep their tags (the one accessor reads all
        four); the old strategy's per-handle state is released.  The
        software path's done-tag and crypto-tag zones are kept, so their
        counters continue."""
        if name not in TAG_STRATEGIES:
            raise ValueError(f"unknown tag strategy {name!r}; one of "
                             f"{', '.join(TAG_STRATEGIES)}")
        old = self.tags
        new = make_tag_strategy(name, self.host.name, done_zone=old.done_zone,
                                crypto_zone=old.crypto_zone)
        new.live = self._handle_live
        self.tags = new
        self.invalidate_fast()
        old.flush()
        return new

    def _handle_live(self, h: Any) -> bool:
        off = self.host.offload
        return off is not None and off.drv_spi_index.get(h.drv_spi) is h

    def ifp_mode(self, ifp: Any) -> Optional[str]:
        """The output offload mode for ``ifp``: ``packet``, ``crypto`` or
        None (software), from :attr:`mode` and what the NIC supports
        (a vlan asks its trunk's driver; an ifnet whose softc says nothing
        is a FreeBSD inline driver: packet offload)."""
        m = self._ifmode.get(ifp, 0)
        if m != 0:
            return m  # type: ignore[return-value]  # not the 0 default: a cached mode
        mode = self._mode
        if mode == MODE_SOFTWARE:
            res: Optional[str] = None
        else:
            dev = ifp
            if ifp.if_type == IFT_L2VLAN:
                dev = vlan_trunkdev(ifp) or ifp
            modes = tuple(getattr(dev.if_softc, "offload_modes", None) or (MODE_PACKET,))
            if mode == MODE_AUTO:
                res = modes[0] if modes else None
            else:
                res = mode if mode in modes else None
        self._ifmode[ifp] = res
        return res

    def invalidate_ifmodes(self) -> None:
        """Forget the per-interface mode decisions (a NIC changed modes)."""
        self._ifmode = {}
        self.invalidate_fast()

    # -- sysctls --------------------------------------------------------------------

    def sysctl(self, name: str, value: Any = None) -> Any:
        """Read (or set) one of :data:`SYSCTLS`; returns the old value."""
        attr = SYSCTLS.get(name)
        if attr is None:
            raise KeyError(f"unknown sysctl {name}")
        old = getattr(self, attr)
        if value is not None:
            setattr(self, attr, value if isinstance(old, str) else int(value))
            self.invalidate_fast()
        return old

    # -- per-SA state ---------------------------------------------------------------

    def sactx(self, sav: "secasvar") -> SaCtx:
        """The SA's datapath state, built on first use (esp_init)."""
        c = self.sactx_map.get(sav)
        if c is not None:
            return c
        with self._lock:
            c = self.sactx_map.get(sav)
            if c is not None:
                return c
            if len(self.sactx_map) >= self._sactx_sweep_at:
                for s in [s for s in self.sactx_map if s.state == DEAD]:
                    del self.sactx_map[s]
                self._sactx_sweep_at = max(256, 2 * len(self.sactx_map))
            try:
                c = SaCtx(sav, build_esp_state(sav))
            except XformInitError as exc:
                c = SaCtx(sav, None, str(exc))
            from .ipsec_output import _pad_of
            c.pad = _pad_of(sav)
            # Published only whole: lock-free readers never see half an SA.
            self.sactx_map[sav] = c
            return c

    def esp_state_factory(self, sav: Any, params: Any, direction: int) -> Optional[EspState]:
        """``MockNic.esp_state_factory``: hand the NIC this host's EspState
        for ``sav`` (None: let the NIC build its own)."""
        if not self.share_esp_state or getattr(sav, "sah", None) is None:
            return None
        return self.sactx(sav).esp

    def sa_counters(self) -> list[dict[str, Any]]:
        """One row per SA the key engine holds: the key engine's counters
        (``current`` = lft_c, ``sw_offl`` = accel_lft_sw, ``hw_offl`` =
        accel_hw_*) and this host's per-path packet counts."""
        rows = []
        for sav in list(self.key.iter_sav()):
            c = self.sactx_map.get(sav)
            saidx = sav.sah.saidx if sav.sah is not None else None
            rows.append({
                "spi": int(sav.spi), "state": int(sav.state),
                "src": _addr_text(saidx.src) if saidx else "",
                "dst": _addr_text(saidx.dst) if saidx else "",
                "current_packets": sav.lft_c_allocations, "current_bytes": sav.lft_c_bytes,
                "sw_offl_packets": sav.accel_lft_sw[0], "sw_offl_bytes": sav.accel_lft_sw[1],
                "hw_offl_packets": sav.accel_hw_allocs, "hw_offl_bytes": sav.accel_hw_octets,
                "offloaded_on": [h.ifp.if_xname for h in list(sav.accel_ifps)
                                 if h.ifp is not None and (h.flags & 3) == 1],
                **(c.counters() if c is not None else {}),
            })
        return rows

    # -- SPD (ipsec4_getpolicy / key_allocsp with a flow cache) ---------------------

    def lookup_policy(self, dir: int, fkey: tuple[Any, ...],
                      build: Callable[[], SecPolicyIndex]) -> Optional[secpolicy]:
        """key_allocsp for the selector ``fkey`` (the header fields it is
        made of); ``build`` makes the SecPolicyIndex on a cache miss."""
        key: Key = self.key
        gen = key.sp_genid
        if gen != self._flows_gen:
            self._flows = {}
            self._flows_gen = gen
        flows = self._flows
        sp = flows.get(fkey, 0)
        if sp == 0:
            # (Invisible, like every cache here: FreeBSD's spdcache counters
            # stay 0, as with its net.key.spdcache.maxentries default of 0.)
            sp = key.key_allocsp(build(), dir)
            if len(flows) >= self.flow_cache_max:
                flows.clear()
            if key.sp_genid == gen:
                flows[fkey] = sp
            return sp
        if sp is not None:
            # key_allocsp's side effect, kept: SP validtime counts from here.
            # The cache holds no ints: past ``sp == 0`` (which mypy does not
            # narrow on) sp is a secpolicy; no isinstance on the per-packet path.
            now = key.clock.now()
            if sp.lastused != now:  # type: ignore[union-attr]
                sp.lastused = now  # type: ignore[union-attr]
        return sp  # type: ignore[return-value]  # the same: never the 0 default here

    def dst_sockaddr(self, dst: bytes) -> Sockaddr:
        """A sockaddr for a destination address (ipsec_common_input's
        dst_address), cached per address."""
        sa = self._dst_sa.get(dst)
        if sa is None:
            sa = Sockaddr.inet(dst) if len(dst) == 4 else Sockaddr.inet6(dst)
            if len(self._dst_sa) >= 65536:
                self._dst_sa.clear()
            self._dst_sa[dst] = sa
        return sa

    def transport_saidx(self, sp: secpolicy, idx: int, isr: Any, src: bytes,
                        dst: bytes) -> Any:
        """ipsec4/6_allocsa's tmpsaidx: the request's saidx with missing
        endpoints taken from the packet (ports ANY)."""
        return self._sa_entry(sp, idx, isr, src, dst).saidx

    def _sa_entry(self, sp: secpolicy, idx: int, isr: Any, src: Optional[bytes],
                  dst: Optional[bytes]) -> "_SaEntry":
        gen = self.key.sp_genid
        if gen != self._saidx_gen:
            self._saidx = {}
            self._saidx_gen = gen
        k = (sp.id, idx, src, dst)
        e = self._saidx.get(k)
        if e is None:
            sx = isr.saidx
            if src is not None and dst is not None:
                sx = sx._replace(src=sx.src if sx.src.sa_len else self.dst_sockaddr(src),
                                 dst=sx.dst if sx.dst.sa_len else self.dst_sockaddr(dst))
            e = _SaEntry(sx)
            if len(self._saidx) >= 65536:
                self._saidx.clear()
            self._saidx[k] = e
        return e

    def allocsa_policy(self, sp: secpolicy, idx: int, isr: Any, src: Optional[bytes],
                       dst: Optional[bytes]) -> tuple[Optional["secasvar"], int]:
        """key_allocsa_policy for request ``idx`` (src/dst: the packet's, for
        a transport request), memoised: the SA the key engine chose last
        time is reused while that choice provably stands -- the SA is alive,
        the SAH address bucket key_getsah searched is the same list with the
        same length and head (a SAH linked or unlinked there changes them),
        and the SA is still the one _alive_pick takes (the oldest alive with
        net.key.preferred_oldsa, else the newest).  Anything else asks the
        key engine again (which also sends the ACQUIRE when there is none).
        This is what FreeBSD's SP cache and the old per-request SA pointer
        bought; the key engine's own lookup recomputes hash keys per call."""
        e = self._sa_entry(sp, idx, isr, src, dst)
        sav = e.sav
        key = self.key
        if sav is not None and sav.state in _ALIVE:
            b = e.bucket
            if key.sahaddrhash.get(e.addrkey) is b and len(b) == e.blen and b[0] is e.b0:
                sah = sav.sah
                if sah is e.sah and sah is not None:
                    alive = sah.savtree_alive
                    try:
                        pick = next(iter(alive)) if key.preferred_oldsa \
                            else next(reversed(alive))
                    except (StopIteration, RuntimeError):
                        pick = None
                    if pick is sav:
                        return sav, 0
        sav, error = key.key_allocsa_policy(sp, e.saidx)
        e.sav = sav
        if sav is not None and sav.sah is not None:
            ak = e.saidx.addrkey
            b = key.sahaddrhash.get(ak)
            if b:
                e.addrkey, e.bucket, e.blen, e.b0, e.sah = ak, b, len(b), b[0], sav.sah
            else:
                e.sav = None
        return sav, error

    def reqlevel(self, sp: secpolicy, idx: int) -> int:
        """ipsec_get_reqlevel: USE or REQUIRE (UNIQUE counts as REQUIRE; the
        DEFAULT level comes from the esp_{trans,net}_deflev sysctls)."""
        isr = sp.req[idx]
        lev = isr.level
        if lev == IPSEC_LEVEL.DEFAULT:
            lev = self.esp_net_deflev if isr.saidx.mode == _TUNNEL else self.esp_trans_deflev
            if lev not in (IPSEC_LEVEL.USE, IPSEC_LEVEL.REQUIRE, IPSEC_LEVEL.UNIQUE):
                lev = IPSEC_LEVEL.REQUIRE
        if lev == IPSEC_LEVEL.UNIQUE:
            return int(IPSEC_LEVEL.REQUIRE)
        return int(lev)

    def default_policy(self) -> int:
        """key_allocsp_default's policy: net.inet.ipsec.def_policy."""
        return self.def_policy

    # -- housekeeping ----------------------------------------------------------------

    def flush(self) -> None:
        """Drop caches and per-handle tag state (host stop)."""
        self.tags.flush()
        with self._lock:
            self.sactx_map.clear()
        self._flows = {}
        self._saidx = {}
        self.invalidate_fast()

    def __repr__(self) -> str:
        return (f"<Ipsec {self.host.name} mode={self._mode} tags={self.tags.name} "
                f"sas={len(self.sactx_map)}>")


def _addr_text(sa: Sockaddr) -> str:
    try:
        import ipaddress
        b = sa.address_bytes
        return str(ipaddress.ip_address(bytes(b))) if len(b) in (4, 16) else ""
    except (ValueError, AttributeError):
        return ""

