"""Hardware-side building blocks shared by every mock NIC.

Nothing here models one FreeBSD file; these are the pieces a NIC driver keeps
in its softc and on the card:

* :class:`SaParams` -- what a driver reads from a ``struct secasvar`` when
  ``if_sa_newkey`` hands it one (mlx5's ``mlx5e_ipsec_build_accel_xfrm_attrs``
  does the same: SPI, addresses, key and salt, ESN, replay window, NAT-T
  ports), taken once so the datapath never touches the key engine's objects.
* :class:`HwTable` -- a fixed-capacity slot array (netdevsim's 33 slots,
  ixgbe's 1024 RX / 1024 TX / 128 RX-IP tables, mlx5's object ids).  The first
  free slot is always the lowest free index, as ``nsim_ipsec_find_empty_idx``
  and ``ixgbe_ipsec_find_empty_idx`` pick it.
* :class:`HwSa` -- one hardware SA *per direction* (mlx5 installs two per
  kernel SA): its key context (an :class:`ipsec_accel.xform_esp.EspState`, so
  the inline engine produces the very bytes software ESP produces), its
  hardware counters, and where it sits in which table.
* :class:`NicSa` -- the ``priv`` a driver returns from ``if_sa_newkey``
  (mlx5's ``mlx5e_ipsec_priv_bothdir``): the HwSa entries of one handle.
* :class:`ErrnoPolicy` -- how a refusal becomes an errno.  The errno decides
  what the offload layer does (freebsd_ipsec_offload.md §4): 0 = HANDLED,
  EOPNOTSUPP = REJECTED (software fallback, recorded), anything else =
  nothing recorded (the SA stays in software, the drv_spi leaks in FreeBSD).
  Linux drivers answer "unsupported algorithm" with EINVAL because there it
  fails the user's request (linux_xfrm_offload.md §2); a FreeBSD driver says
  EOPNOTSUPP.  Profiles therefore record the Linux errno of every refusal and
  return, by default (``errno_style="freebsd"``), EOPNOTSUPP for "this SA is
  not something the card can do" and the real errno for everything else
  (ENOSPC full table, EBUSY contention, EACCES trust, EEXIST SPI collision).
  ``errno_style="linux"`` returns the Linux errno unchanged.
"""

from __future__ import annotations

import errno as _errno
import heapq
import threading
from typing import Any, Final, NamedTuple, Optional

from cryptography.hazmat.primitives.ciphers.aead import AESGCM, ChaCha20Poly1305

from ipsec_accel.xform import KIND_CHACHA, KIND_GCM, esp_init_algorithms
from ipsec_accel.xform_esp import EspState
from pfkey.ipsec import IPSEC_DIR
from pfkey.pfkeyv2 import AF_INET, AF_INET6, SADB_EALG, SADB_SAFLAGS

__all__ = [
    "DIR_UNKNOWN", "DIR_IN", "DIR_OUT", "DIR_NAMES", "IPPROTO_ESP", "IPPROTO_AH",
    "IPPROTO_IPCOMP", "MODE_PACKET", "MODE_CRYPTO", "SaParams", "HwTable", "HwSa", "NicSa",
    "Refusal", "ErrnoPolicy", "ERRNO_FREEBSD", "ERRNO_LINUX", "KIND_UNSUPPORTED",
    "KIND_RESOURCE", "KIND_BUSY", "KIND_PERMISSION", "KIND_COLLISION", "KIND_DEVICE",
    "KIND_INVALID",
]

#: Direction of one hardware SA.  0 is the offload layer's SA_DIR_UNKNOWN
#: (FreeBSD never tells a driver the direction: §17.13).
DIR_UNKNOWN: Final = 0
DIR_IN: Final = int(IPSEC_DIR.INBOUND)
DIR_OUT: Final = int(IPSEC_DIR.OUTBOUND)
DIR_NAMES: Final = {DIR_UNKNOWN: "any", DIR_IN: "in", DIR_OUT: "out"}

IPPROTO_ESP: Final = 50
IPPROTO_AH: Final = 51
IPPROTO_IPCOMP: Final = 108

#: Offload modes (linux_xfrm_offload.md §1).  ``packet``: the stack hands the
#: NIC plaintext and an OUT tag (FreeBSD inline offload); ``crypto``: the
#: stack builds the ESP framing and the NIC only encrypts/decrypts.
MODE_PACKET: Final = "packet"
MODE_CRYPTO: Final = "crypto"

_ESN: Final = int(SADB_SAFLAGS.X_SAFLAGS_ESN)
_SALTED: Final = frozenset(int(a) for a in (
    SADB_EALG.X_AESCTR, SADB_EALG.X_AESGCM8, SADB_EALG.X_AESGCM12, SADB_EALG.X_AESGCM16,
    SADB_EALG.X_AESGMAC, SADB_EALG.X_CHACHA20POLY1305))


# --- the SA as a driver sees it ------------------------------------------------------

class SaParams(NamedTuple):
    """The attributes of a ``secasvar`` a driver programs into the card.

    ``spi`` is the SPI as it appears on the wire (big-endian integer, the
    key engine's ``sav.spi``); ``src``/``dst`` raw address bytes (4 or 16);
    ``enc_key`` the key *with* its salt (RFC 4106: the last 4 bytes);
    ``replay`` the window in bytes (``sadb_sa_replay``, 0 = none);
    ``natt`` (sport, dport) when the SA is ESP-in-UDP.
    """

    spi: int
    proto: int
    mode: int
    reqid: int
    af: int
    src: bytes
    dst: bytes
    alg_enc: int
    alg_auth: int
    alg_comp: int
    enc_key: bytes
    auth_key: bytes
    flags: int
    replay: int
    natt: Optional[tuple[int, int]]
    state: int

    @property
    def esn(self) -> bool:
        return bool(self.flags & _ESN)

    @property
    def key_bits(self) -> int:
        """Cipher key bits without the 4-byte salt of GCM/CTR/ChaCha (what
        mlx5_ipsec.c and ixgbe check), or the whole key for other ciphers."""
        return 8 * len(self.cipher_key)

    @property
    def cipher_key(self) -> bytes:
        return self.enc_key[:-4] if self.salted else self.enc_key

    @property
    def salt(self) -> bytes:
        return self.enc_key[-4:] if self.salted else b""

    @property
    def salted(self) -> bool:
        # SAV_ISCTRORGCM / SAV_ISCHACHA (+ AES-GMAC, RFC 4543): the last 4
        # key bytes are the salt.
        return self.alg_enc in _SALTED

    @classmethod
    def from_sav(cls, sav: Any) -> "SaParams":
        """Read a ``pfkey.keydb.secasvar`` (or anything shaped like one)."""
        saidx = sav.sah.saidx
        dst = saidx.dst
        src = saidx.src
        af = dst.family
        natt = None
        if sav.natt is not None and (sav.natt.sport or sav.natt.dport):
            natt = (int(sav.natt.sport), int(sav.natt.dport))
        return cls(
            spi=int(sav.spi), proto=int(saidx.proto), mode=int(saidx.mode),
            reqid=int(saidx.reqid), af=int(af), src=bytes(src.address_bytes),
            dst=bytes(dst.address_bytes), alg_enc=int(sav.alg_enc),
            alg_auth=int(sav.alg_auth), alg_comp=int(sav.alg_comp),
            enc_key=bytes(sav.key_enc.key) if sav.key_enc is not None else b"",
            auth_key=bytes(sav.key_auth.key) if sav.key_auth is not None else b"",
            flags=int(sav.flags),
            replay=int(sav.replay.wsize) if sav.replay is not None else 0,
            natt=natt, state=int(sav.state))

    @property
    def family_ok(self) -> bool:
        return self.af in (AF_INET, AF_INET6) and len(self.dst) in (4, 16)


# --- tables ------------------------------------------------------------------------

class HwTable:
    """A hardware table of ``capacity`` slots (None: unbounded, e.g. Chelsio's
    key contexts, which live in host memory).

    ``alloc`` returns the lowest free index or -1 when full.  The free list is
    a high-water mark plus a heap of freed indexes, so a 2**24-slot mlx5 table
    costs nothing until used.  ``lock`` guards the table; drivers sharing one
    table (the ixgbe PF and its VFs) share this lock -- it is the PF's
    ``ipsec`` lock, never held across a mailbox wait or a call out of the
    driver.
    """

    __slots__ = ("name", "capacity", "slots", "_hwm", "_free", "count", "lock", "peak")

    def __init__(self, name: str, capacity: Optional[int],
                 lock: Optional[threading.Lock] = None) -> None:
        self.name = name
        self.capacity = capacity
        self.slots: dict[int, Any] = {}
        self._hwm = 0
        self._free: list[int] = []
        self.count = 0
        self.peak = 0
        self.lock = lock if lock is not None else threading.Lock()

    def alloc(self, entry: Any) -> int:
        """Take the lowest free slot for ``entry`` (caller holds ``lock``)."""
        if self._free:
            idx = heapq.heappop(self._free)
        elif self.capacity is None or self._hwm < self.capacity:
            idx = self._hwm
            self._hwm += 1
        else:
            return -1
        self.slots[idx] = entry
        self.count += 1
        if self.count > self.peak:
            self.peak = self.count
        return idx

    def free(self, idx: int) -> Any:
        """Release slot ``idx``; returns what was there (None if unused)."""
        entry = self.slots.pop(idx, None)
        if entry is None:
            return None
        self.count -= 1
        # Freed slots go to a heap (bounded by the peak use), so the next
        # alloc still returns the lowest free index.
        heapq.heappush(self._free, idx)
        return entry

    def get(self, idx: int) -> Any:
        return self.slots.get(idx)

    def clear(self) -> list[Any]:
        """Drop every entry (a device reset); returns them."""
        gone = list(self.slots.values())
        self.slots.clear()
        self._free.clear()
        self._hwm = 0
        self.count = 0
        return gone

    @property
    def full(self) -> bool:
        return self.capacity is not None and self.count >= self.capacity

    def __len__(self) -> int:
        return self.count

    def __repr__(self) -> str:
        cap = "inf" if self.capacity is None else self.capacity
        return f"<HwTable {self.name} {self.count}/{cap}>"


# --- hardware SAs ------------------------------------------------------------------

#: Serialises the lazy construction of key contexts (first packets only).
_CTX_LOCK = threading.Lock()


class HwSa:
    """One hardware SA in one direction.

    ``esp`` is the key context: an :class:`EspState` built from the SA's
    algorithms and key, with its own sequence counter, IV counter and replay
    window (the card's, as on real hardware; ``MockNic.esp_state_factory``
    may substitute the stack's own state so both share one sequence space).
    ``aead`` / ``salt`` serve crypto offload (the stack built the framing).
    The install validates the key (``esp_init_algorithms``) but the Python
    objects are built on the entry's first packet (:meth:`context`): an SA is
    installed in both directions and used in one, and 10,000 idle key
    contexts would cost the install path more in garbage-collector scans
    than in building them -- the card's behaviour is the same either way.

    Counters: ``packets``/``octets`` count packet-offload traffic (plaintext
    bytes, what the stack's SW-offl view counts), which the counter poll
    reports through ``ipsec_accel_drv_sa_lifetime_update``;
    ``crypto_packets``/``crypto_octets`` count crypto-offload traffic, which
    is *not* reported (with crypto offload the stack accounts lifetimes
    itself, linux_xfrm_offload.md §3.7); ``drops`` counts per-SA drops.
    """

    __slots__ = ("direction", "drv_spi", "params", "sav", "ifpo", "rcvif", "vid", "owner",
                 "rx_mode", "esp", "aead", "salt", "table", "index", "aux", "packets",
                 "octets", "crypto_packets", "crypto_octets", "drops", "live", "factory",
                 "want_aead")

    def __init__(self, direction: int, drv_spi: int, params: SaParams, sav: Any, ifpo: Any,
                 esp: Optional[EspState] = None, *, owner: Any = None,
                 rx_mode: str = MODE_PACKET, vid: int = 0, factory: Any = None,
                 want_aead: bool = False) -> None:
        self.direction = direction
        self.drv_spi = drv_spi
        self.params = params
        self.sav = sav
        self.ifpo = ifpo            # the ifnet the kernel called us with (maybe a vlan)
        self.rcvif = ifpo           # where decrypted packets are delivered
        self.vid = vid
        self.owner = owner          # the NIC (PF or VF) that owns the entry
        self.rx_mode = rx_mode
        self.esp = esp
        self.factory = factory
        self.want_aead = want_aead
        self.aead: Any = None
        self.salt = b""
        if esp is not None and want_aead:
            self.build_aead()
        self.table: Optional[HwTable] = None
        self.index = -1
        self.aux: dict[str, Any] = {}
        self.packets = 0
        self.octets = 0
        self.crypto_packets = 0
        self.crypto_octets = 0
        self.drops = 0
        self.live = True

    def context(self) -> EspState:
        """The key context, built on first use (class docstring); the
        factory, when given, may hand back the stack's own state."""
        esp = self.esp
        if esp is not None:
            return esp
        with _CTX_LOCK:
            esp = self.esp
            if esp is None:
                p = self.params
                if self.factory is not None:
                    esp = self.factory(self.sav, p, self.direction)
                if esp is None:
                    esp = EspState(p.spi, p.alg_enc, p.enc_key, p.alg_auth, p.auth_key,
                                   flags=p.flags, replay=p.replay, mode=p.mode, af=p.af)
                if self.want_aead:
                    self.build_aead()
                self.esp = esp          # published last: readers see aead first
        return esp

    def build_aead(self) -> None:
        """The raw AEAD for crypto offload (GCM / ChaCha20-Poly1305 only)."""
        p = self.params
        algs = esp_init_algorithms(p.alg_enc, p.enc_key, 0, b"")
        if algs.enc.kind == KIND_GCM:
            self.aead = AESGCM(algs.cipher_key)
        elif algs.enc.kind == KIND_CHACHA:
            self.aead = ChaCha20Poly1305(algs.cipher_key)
        self.salt = algs.salt

    @property
    def dir_name(self) -> str:
        return DIR_NAMES.get(self.direction, str(self.direction))

    def __repr__(self) -> str:
        return (f"<HwSa {self.dir_name} spi={self.params.spi:#010x} drv_spi={self.drv_spi} "
                f"{self.table.name if self.table else '-'}[{self.index}] "
                f"pkts={self.packets} bytes={self.octets}>")


class NicSa:
    """The ``priv`` of one (SA, ifnet) handle: the hardware SAs installed for
    it (two for a direction-less install: inbound and outbound)."""

    __slots__ = ("nic", "drv_spi", "sav", "ifpo", "entries", "direction", "live", "extra",
                 "reported")

    def __init__(self, nic: Any, drv_spi: int, sav: Any, ifpo: Any, entries: list[HwSa],
                 direction: int) -> None:
        self.nic = nic
        self.drv_spi = drv_spi
        self.sav = sav
        self.ifpo = ifpo
        self.entries = entries
        self.direction = direction
        self.live = True
        self.reported = (0, 0)        # (octets, packets) last given to the poll
        self.extra: dict[str, Any] = {}

    def counters(self) -> tuple[int, int]:
        """(octets, packets) summed over both directions -- what mlx5's
        counter work adds up before calling the lifetime helper."""
        o = p = 0
        for e in self.entries:
            o += e.octets
            p += e.packets
        return o, p

    @property
    def entry_in(self) -> Optional[HwSa]:
        for e in self.entries:
            if e.direction == DIR_IN:
                return e
        return None

    @property
    def entry_out(self) -> Optional[HwSa]:
        for e in self.entries:
            if e.direction == DIR_OUT:
                return e
        return None

    def __repr__(self) -> str:
        dirs = "+".join(e.dir_name for e in self.entries) or "none"
        return f"<NicSa drv_spi={self.drv_spi} {dirs} live={self.live}>"


# --- refusals and errnos -----------------------------------------------------------

KIND_UNSUPPORTED: Final = "unsupported"   # the card cannot do this SA
KIND_INVALID: Final = "invalid"           # malformed request (Linux EINVAL in both styles)
KIND_RESOURCE: Final = "resource"         # a table is full
KIND_BUSY: Final = "busy"                 # transient contention
KIND_PERMISSION: Final = "permission"     # trust / privilege
KIND_COLLISION: Final = "collision"       # SPI already owned by another function
KIND_DEVICE: Final = "device"             # device gone / mailbox failure

ERRNO_FREEBSD: Final = "freebsd"
ERRNO_LINUX: Final = "linux"


class Refusal(NamedTuple):
    """One refused request: why, what was returned, what Linux returns."""

    op: str
    reason: str
    kind: str
    errno: int
    linux_errno: int
    spi: int


class ErrnoPolicy:
    """Maps a refusal to the errno a driver returns (module docstring).

    ``freebsd`` style: KIND_UNSUPPORTED -> EOPNOTSUPP (REJECTED handle,
    software fallback, as mlx5_ipsec.c answers every validation failure);
    every other kind keeps its own errno (ENOSPC, EBUSY, EACCES, EEXIST,
    ETIMEDOUT... : "other error", nothing recorded).  ``linux`` style: the
    Linux driver's errno, whatever the kind.
    """

    def __init__(self, style: str = ERRNO_FREEBSD) -> None:
        if style not in (ERRNO_FREEBSD, ERRNO_LINUX):
            raise ValueError(f"errno_style must be {ERRNO_FREEBSD!r} or {ERRNO_LINUX!r}")
        self.style = style

    def errno_for(self, kind: str, linux_errno: int) -> int:
        if self.style == ERRNO_LINUX:
            return linux_errno
        if kind == KIND_UNSUPPORTED:
            return _errno.EOPNOTSUPP
        return linux_errno
