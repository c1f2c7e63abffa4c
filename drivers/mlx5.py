"""An mlx5-like NIC: FreeBSD's ``sys/dev/mlx5/mlx5_accel/mlx5_ipsec.c``
(ConnectX-6 Dx / ConnectX-7 packet offload, the only FreeBSD driver with
``if_ipsec_accel_methods``), reference freebsd_ipsec_offload.md §13 and the
cx7 profile P4 of linux_xfrm_offload.md §6/§10.

Behaviour modelled:

* **Two hardware SAs per kernel SA**: ``mlx5e_if_sa_newkey`` installs an
  INBOUND then an OUTBOUND SA (the kernel never says the direction); a
  failure of the second tears the first down; ``priv`` holds both
  (``mlx5e_ipsec_priv_bothdir``).  With the offload layer's "sa_direction"
  extension only the given direction is installed.
* **Validation** (``mlx5e_xfrm_validate_state``, in its order; every refusal
  is EOPNOTSUPP, which the infrastructure records as a REJECTED handle):
  no PACKET_OFFLOAD capability; SA DEAD; no encryption; cipher not
  AES-GCM-16; compression; auth not AES128GMAC/AES256GMAC (i.e. a 192-bit
  GCM key); family not IPv4/IPv6; protocol not ESP; key without the salt
  not 128/256 bits; mode not transport; NAT-T without the ESPINUDP
  capability; replay window not in {0, 4, 8, 16, 32} bytes; ESN without the
  ESN capability; **a replay window on a non-ESN SA** ("non-ESN but
  replay-protect SA offload is not supported").  Device gone: EOPNOTSUPP.
  ``errno_style="linux"`` answers EINVAL instead (the Linux driver fails
  the user's request).
* **Capacity**: IPsec objects carry 24-bit ids, so at most 2**24 hardware
  SAs (``capacity`` option); full -> ENOSPC (an "other error": nothing
  recorded, the drv_spi leaks in FreeBSD).
* **Counters**: a delayed work per SA every 1000 ms sums both directions'
  flow counters and calls ``ipsec_accel_drv_sa_lifetime_update(sav, ifpo,
  kspi, bytes, packets)`` -- here one poll thread per NIC at
  ``poll_interval`` (default 1 s); ``if_sa_cnt`` returns the same sums with
  allocations cast to 32 bits.  Byte counts are the plaintext lengths (the
  real card counts L2 bytes; Linux subtracts headers to approximate).
* **Policies** (``mlx5e_xfrm_validate_policy``, each EINVAL, so the
  infrastructure marks the SP handle REJECTED): no PACKET_OFFLOAD;
  ``tcount > 1``; BYPASS without the PRIO capability; a template *and* a
  socket (inp); direction neither in nor out; a non-transport template;
  action not DISCARD/IPSEC/BYPASS; BYPASS without a socket; a socket that is
  not UDP.  Device gone: EOPNOTSUPP.  Socket policies get priority 1 and
  action IPSEC, global ones priority 0 and their own action; reqid from the
  first template (``mlx5e_ipsec_build_accel_pol_attrs``).
* **Capability toggle**: ``ifconfig mce0 -ipsec`` closes the port, calls
  ``ipsec_accel_on_ifdown``, clears the bit and reopens; enabling replays
  nothing (§6.4).  On a running interface the close reports
  LINK_STATE_DOWN and the reopen the carrier again (``mlx5e_close_locked``,
  ``mlx5e_update_carrier``); a down interface stays down, unreported.
* **ipsec_accel_on_ifdown is called from exactly two places** (FreeBSD
  ``sys/dev/mlx5/mlx5_en/mlx5_en_main.c``): that toggle in ``mlx5e_ioctl``
  and ``mlx5e_destroy_ifp`` (detach, after ``ether_ifdetach``; the stack's
  ``ifnet_departure_event`` handler in ipsec_offload.c has already done it).
  ``ifconfig mce0 down`` (SIOCSIFFLAGS: ``mlx5e_close_locked``) and a port
  or cable event (``mlx5e_update_carrier``: ``if_link_state_change``) do not
  call it, so handles and hardware SAs survive them: ``ifdown_forgets``
  defaults to False here (True opts into the generic mock's behaviour).
* ``if_hwassist``: the trunk's hwassist & (TSO, TCP, UDP, IP, IP6_TSO,
  IP6_TCP, IP6_UDP).
* Offload modes: packet (FreeBSD inline) first, crypto (Linux) as well.

A socket (``inp``) is any object; its protocol is read from ``inp_ip_p``,
``protocol`` or ``proto`` (17 = UDP).
"""

from __future__ import annotations

import errno as _errno
from typing import Any, ClassVar, Final, Optional

from pfkey.ipsec import IPSEC_DIR, IPSEC_MODE, IPSEC_POLICY
from pfkey.pfkeyv2 import AF_INET, AF_INET6, SADB_AALG, SADB_EALG

from .base import MockNic
from .hw import (
    DIR_UNKNOWN, IPPROTO_ESP, KIND_INVALID, KIND_UNSUPPORTED, MODE_CRYPTO, MODE_PACKET,
    SaParams,
)

__all__ = [
    "Mlx5Nic", "MLX5_IPSEC_CAP_CRYPTO", "MLX5_IPSEC_CAP_ESN", "MLX5_IPSEC_CAP_PACKET_OFFLOAD",
    "MLX5_IPSEC_CAP_ROCE", "MLX5_IPSEC_CAP_TUNNEL", "MLX5_IPSEC_CAP_ESPINUDP",
    "MLX5_IPSEC_CAP_PRIO", "MLX5_REPLAY_WINDOWS",
]

# mlx5_ipsec_device_caps() bits (names as in the driver).
MLX5_IPSEC_CAP_CRYPTO: Final = 1 << 0
MLX5_IPSEC_CAP_ESN: Final = 1 << 1
MLX5_IPSEC_CAP_PACKET_OFFLOAD: Final = 1 << 2
MLX5_IPSEC_CAP_ROCE: Final = 1 << 3
MLX5_IPSEC_CAP_PRIO: Final = 1 << 4
MLX5_IPSEC_CAP_TUNNEL: Final = 1 << 5
MLX5_IPSEC_CAP_ESPINUDP: Final = 1 << 6

#: Replay windows (bytes) the ASO can do: 0 (off), 32, 64, 128, 256 bits.
MLX5_REPLAY_WINDOWS: Final = frozenset((0, 4, 8, 16, 32))

_GCM16: Final = int(SADB_EALG.X_AESGCM16)
_GMAC: Final = frozenset((int(SADB_AALG.X_AES128GMAC), int(SADB_AALG.X_AES256GMAC)))
_TRANSPORT: Final = int(IPSEC_MODE.TRANSPORT)


def _inp_proto(inp: Any) -> int:
    for attr in ("inp_ip_p", "protocol", "proto"):
        v = getattr(inp, attr, None)
        if v is not None:
            return int(v)
    return -1


class Mlx5Nic(MockNic):
    """ConnectX-like packet-offload NIC (module docstring).

    Extra options: ``esn``, ``natt`` (ESPINUDP), ``prio``, ``crypto``,
    ``packet_offload``, ``tunnel`` capability bits (all on but tunnel, which
    FreeBSD's driver never offloads anyway).
    """

    profile: ClassVar[str] = "mlx5"
    dname: ClassVar[str] = "mce"
    default_modes: ClassVar[tuple[str, ...]] = (MODE_PACKET, MODE_CRYPTO)
    default_capacity: ClassVar[Optional[int]] = 1 << 24
    default_poll_interval: ClassVar[float] = 1.0
    default_cap_toggle_ifdown: ClassVar[bool] = True
    default_ifdown_forgets: ClassVar[bool] = False
    has_spd_ops: ClassVar[bool] = True

    def __init__(self, name: Optional[str] = None, *, esn: bool = True, natt: bool = True,
                 prio: bool = True, crypto: bool = True, packet_offload: bool = True,
                 tunnel: bool = False, **kw: Any) -> None:
        caps = 0
        caps |= MLX5_IPSEC_CAP_ESN if esn else 0
        caps |= MLX5_IPSEC_CAP_ESPINUDP if natt else 0
        caps |= MLX5_IPSEC_CAP_PRIO if prio else 0
        caps |= MLX5_IPSEC_CAP_CRYPTO if crypto else 0
        caps |= MLX5_IPSEC_CAP_PACKET_OFFLOAD if packet_offload else 0
        caps |= MLX5_IPSEC_CAP_TUNNEL if tunnel else 0
        self.caps = caps
        if "modes" not in kw:
            kw["modes"] = tuple(m for m, bit in ((MODE_PACKET, MLX5_IPSEC_CAP_PACKET_OFFLOAD),
                                                 (MODE_CRYPTO, MLX5_IPSEC_CAP_CRYPTO))
                                if caps & bit)
        super().__init__(name, **kw)

    # -- SAs -----------------------------------------------------------------------------

    def _no(self, reason: str, p: SaParams) -> int:
        return self.refuse("newkey", reason, KIND_UNSUPPORTED, _errno.EINVAL, p.spi)

    def sa_check(self, p: SaParams, direction: int) -> int:
        # mlx5e_xfrm_validate_state, same order.
        if not self.caps & MLX5_IPSEC_CAP_PACKET_OFFLOAD:
            return self._no("FULL offload is not supported", p)
        if p.state == 3:
            return self._no("SA is DEAD", p)
        if p.alg_enc == int(SADB_EALG.NONE):
            return self._no("Cannot offload authenticated xfrm states", p)
        if p.alg_enc != _GCM16:
            return self._no("Only IPSec aes-gcm-16 encryption protocol may be offloaded", p)
        if p.alg_comp:
            return self._no("Cannot offload compressed xfrm states", p)
        if p.alg_auth not in _GMAC:
            return self._no("Cannot offload xfrm states with AEAD key length other than "
                            "128/256 bits", p)
        if p.af not in (AF_INET, AF_INET6):
            return self._no("Only IPv4/6 xfrm states may be offloaded", p)
        if p.proto != IPPROTO_ESP:
            return self._no("Only ESP xfrm state may be offloaded", p)
        if p.key_bits not in (128, 256):
            return self._no("Cannot offload xfrm states with AEAD key length other than "
                            "128/256 bit", p)
        if p.mode != _TRANSPORT and not self.caps & MLX5_IPSEC_CAP_TUNNEL:
            return self._no("Only transport xfrm states may be offloaded in full offload "
                            "mode", p)
        if p.natt is not None and not self.caps & MLX5_IPSEC_CAP_ESPINUDP:
            return self._no("Encapsulation is not supported", p)
        if p.replay not in MLX5_REPLAY_WINDOWS:
            return self._no(f"Unsupported replay window size {p.replay}", p)
        if p.esn:
            if not self.caps & MLX5_IPSEC_CAP_ESN:
                return self._no("ESN is not supported", p)
        elif p.replay != 0:
            return self._no("non-ESN but replay-protect SA offload is not supported", p)
        return 0

    def sa_directions(self, p: SaParams, direction: int) -> tuple[int, ...] | int:
        if direction == DIR_UNKNOWN:
            # mlx5e_if_sa_newkey: INBOUND first, then OUTBOUND.
            return (int(IPSEC_DIR.INBOUND), int(IPSEC_DIR.OUTBOUND))
        return (direction,)

    # -- policies ------------------------------------------------------------------------

    def _sp_no(self, reason: str) -> int:
        return self.refuse("spdadd", reason, KIND_INVALID, _errno.EINVAL)

    def sp_check(self, sp: Any, inp: Any) -> int:
        # mlx5e_xfrm_validate_policy, same order.
        if not self.caps & MLX5_IPSEC_CAP_PACKET_OFFLOAD:
            return self._sp_no("FULL offload is not supported")
        tcount = len(sp.req)
        if tcount > 1:
            return self._sp_no(f"Can offload exactly one template, not {tcount}")
        if sp.policy == IPSEC_POLICY.BYPASS and not self.caps & MLX5_IPSEC_CAP_PRIO:
            return self._sp_no("Device does not support policy priority")
        if tcount > 0 and inp is not None:
            return self._sp_no("Not valid input data")
        if sp.spidx.dir not in (IPSEC_DIR.INBOUND, IPSEC_DIR.OUTBOUND):
            return self._sp_no("Wrong policy direction")
        if tcount > 0 and sp.req[0].saidx.mode != _TRANSPORT:
            return self._sp_no("Device supports transport mode only")
        if sp.policy not in (IPSEC_POLICY.DISCARD, IPSEC_POLICY.IPSEC, IPSEC_POLICY.BYPASS):
            return self._sp_no("Offloaded policy must be specific on its action")
        if sp.policy == IPSEC_POLICY.BYPASS and inp is None:
            return self._sp_no("Missing port information for IKE bypass")
        if inp is not None and _inp_proto(inp) != 17:
            return self._sp_no(f"Unsupported IKE bypass protocol {_inp_proto(inp)}")
        return 0

    def sp_attrs(self, sp: Any, inp: Any) -> dict[str, Any]:
        # mlx5e_ipsec_build_accel_pol_attrs.
        if inp is None:
            return {"prio": 0, "action": int(sp.policy), "dir": int(sp.spidx.dir),
                    "reqid": sp.req[0].saidx.reqid if sp.req else 0}
        return {"prio": 1, "action": int(IPSEC_POLICY.IPSEC), "dir": int(sp.spidx.dir),
                "reqid": 0, "proto": _inp_proto(inp)}
