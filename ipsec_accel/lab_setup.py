"""The building blocks of :mod:`ipsec_accel.lab`: NIC profiles and the
topology text of a two-host lab (drivers.topology's format), the
:class:`TrafficResult` of a traffic run, and the export of a kernel's SAs as
Wireshark's ESP SA table (``esp_sa`` UAT, :func:`ipsec_accel.pcap.write_esp_sa`).
Models no FreeBSD file.
"""

from __future__ import annotations

import importlib
import ipaddress
import os
from typing import Any, Callable, Iterable, NamedTuple, Optional, Sequence, Union

from pfkey.pfkeyv2 import SADB_SAFLAGS

from .packet import IPPROTO_ICMP, IPPROTO_ICMPV6, IPPROTO_TCP, IPPROTO_UDP
from .pcap import EspSaEntry, write_esp_sa

__all__ = ["PROFILES", "DEFAULT_KEY", "LabError", "TrafficResult", "lab_topology",
           "esp_sa_entries", "write_wireshark_sa"]

#: NIC profiles a two-host lab can be built from (drivers.topology names).
PROFILES = ("mlx5", "ixgbe", "ixgbevf", "netdevsim", "chelsio", "generic")
#: Profiles whose driver must be told the SA direction (offload extension
#: "sa_direction"; FreeBSD's KPI never says it).
_NEED_DIRECTION = frozenset({"ixgbevf", "chelsio"})
_IFNAME = {"mlx5": "mce0", "ixgbe": "ix0", "ixgbevf": "ixv0", "netdevsim": "nsim0",
           "chelsio": "cc0", "generic": "gen0", "faulty": "fault0"}
_PROTO = {"udp": IPPROTO_UDP, "tcp": IPPROTO_TCP, "icmp": IPPROTO_ICMP,
          "icmp6": IPPROTO_ICMPV6, "icmpv6": IPPROTO_ICMPV6}
#: A 128-bit AES-GCM key + salt every profile accepts.
DEFAULT_KEY = "0x" + bytes(range(0x20, 0x34)).hex()


class LabError(RuntimeError):
    """A lab could not be configured (a PF_KEY request failed ...)."""


class TrafficResult(NamedTuple):
    """What :meth:`Lab.push` did.  ``errors``: ip_output errno -> count;
    ``delivered``: packets the receiver's socket got; ``paths``: how the
    packets went (``out_packet`` offloaded, ``out_crypto`` crypto offload,
    ``out_sw`` software, ``out_bypass`` clear; ``in_*`` on the receiver);
    ``drops``: every drop counter that moved, ``<host>.<struct>.<field>``
    and ``<host>.<nic>.<reason>``; ``per_sa``: :meth:`Lab.sa_counters` rows
    of both hosts after the run."""

    n: int
    size: int
    proto: str
    sent: int
    errors: dict[int, int]
    delivered: int
    delivered_bytes: int
    elapsed: float
    pps: float
    paths: dict[str, int]
    drops: dict[str, int]
    per_sa: list[dict[str, Any]]

    def summary(self) -> str:
        """Human-readable lines (the traffic command prints similar ones)."""
        lines = [f"{self.n} x {self.size}-byte {self.proto}: sent {self.sent}, "
                 f"delivered {self.delivered} ({self.delivered_bytes} bytes), "
                 f"{self.pps:,.0f} pps"]
        lines.append("paths: " + ", ".join(f"{k}={v}" for k, v in self.paths.items() if v))
        if self.errors:
            lines.append("errors: " + ", ".join(f"{os.strerror(k) if k > 0 else k}={v}"
                                                for k, v in self.errors.items()))
        if self.drops:
            lines.append("drops: " + ", ".join(f"{k}={v}" for k, v in self.drops.items()))
        for r in self.per_sa:
            lines.append(f"  {r['host']} spi {r['spi']:#x} {r['src']}->{r['dst']}: "
                         f"current {r['current_packets']} pkts/{r['current_bytes']} B, "
                         f"sw offl {r['sw_offl_packets']}, hw offl {r['hw_offl_packets']}")
        return "\n".join(lines)


def lab_topology(profile: str = "mlx5", *, names: Sequence[str] = ("a", "b"),
                 mtu: int = 1500, ipsec: bool = True, capture: Optional[str] = None,
                 modes: Optional[Sequence[str]] = None,
                 options: Optional[dict[str, Any]] = None) -> str:
    """A topology file (drivers.topology format): one host per name, each
    with one ``profile`` NIC (an ixgbevf gets its PF ``ix0`` too), a wire
    between the first two."""
    if profile not in _IFNAME:
        raise ValueError(f"unknown profile {profile!r}; one of {', '.join(PROFILES)}")
    ifn = _IFNAME[profile]
    opts = dict(options or {})
    if modes is not None:
        opts["modes"] = list(modes)

    def table(d: dict[str, Any]) -> str:
        def val(v: Any) -> str:
            if isinstance(v, bool):
                return "true" if v else "false"
            if isinstance(v, (list, tuple)):
                return "[" + ", ".join(val(x) for x in v) + "]"
            if isinstance(v, str):
                return f'"{v}"'
            return str(v)
        return "{ " + ", ".join(f"{k} = {val(v)}" for k, v in d.items()) + " }"

    out = []
    for h in names:
        out.append(f'[[host]]\nname = "{h}"\n')
        if profile == "ixgbevf":
            # The PF keeps IPSEC off: on, it would claim the RX SAs first and
            # the VF's requests would collide (EEXIST) -- one owner per SPI.
            out.append(f'[[host.interface]]\nname = "ix0"\ndriver = "ixgbe"\nmtu = {mtu}\n'
                       f'ipsec = false\noptions = {table({"vf_ipsec": True})}\n')
            vopts = {"trust": True, **opts}
            out.append(f'[[host.interface]]\nname = "{ifn}"\ndriver = "ixgbevf"\n'
                       f'pf = "ix0"\nvf_id = 1\nmtu = {mtu}\n'
                       f'ipsec = {"true" if ipsec else "false"}\n'
                       f'options = {table(vopts)}\n')
        else:
            out.append(f'[[host.interface]]\nname = "{ifn}"\ndriver = "{profile}"\n'
                       f'mtu = {mtu}\nipsec = {"true" if ipsec else "false"}\n'
                       + (f"options = {table(opts)}\n" if opts else ""))
    if len(names) >= 2:
        out.append(f'[[wire]]\na = "{names[0]}:{ifn}"\nb = "{names[1]}:{ifn}"\n'
                   + (f'capture = "{capture}"\n' if capture else ""))
    return "\n".join(out)


def _default_builder() -> Callable[..., Any]:
    # The one run-time bridge to the driver layer (as tools/setkey.py has):
    # ipsec_accel must not import drivers statically.
    return importlib.import_module("drivers.topology").build_lab  # type: ignore[no-any-return]


def _addr_text(sa: Any) -> str:
    b = bytes(sa.address_bytes)
    return str(ipaddress.ip_address(b)) if len(b) in (4, 16) else "*"


def esp_sa_entries(key: Any) -> list[EspSaEntry]:
    """The SAD of a key engine (``host.key``) as Wireshark ESP SA entries
    (ESP SAs that are not LARVAL or DEAD)."""
    out = []
    for sav in list(key.iter_sav()):
        if sav.sah is None or sav.sah.saidx.proto != 50 or sav.state not in (1, 2):
            continue
        s = sav.sah.saidx
        out.append(EspSaEntry(
            _addr_text(s.src), _addr_text(s.dst), int(sav.spi), int(sav.alg_enc),
            bytes(sav.key_enc.key) if sav.key_enc is not None else b"",
            int(sav.alg_auth) or None,
            bytes(sav.key_auth.key) if sav.key_auth is not None else b"",
            bool(sav.flags & _ESN_FLAG), 0))
    return out


_ESN_FLAG = int(SADB_SAFLAGS.X_SAFLAGS_ESN)


def write_wireshark_sa(path: Union[str, os.PathLike[str]], keys: Iterable[Any]) -> int:
    """Write Wireshark's ``esp_sa`` UAT file for the SAs of every key engine
    in ``keys`` (duplicates -- the same SA on both ends -- once).  Returns
    the number of SAs written (algorithms Wireshark lacks are skipped)."""
    seen: set[tuple[str, str, int | str]] = set()
    entries = []
    for k in keys:
        for e in esp_sa_entries(k):
            if (e.src, e.dst, e.spi) not in seen:
                seen.add((e.src, e.dst, e.spi))
                entries.append(e)
    return write_esp_sa(path, entries, skip_unsupported=True)


_NIC_TRAFFIC = frozenset({"tx_packets", "tx_bytes", "tx_clear", "tx_encrypted", "tx_crypto",
                          "rx_packets", "rx_bytes", "rx_decrypted", "rx_crypto", "rx_passed",
                          "rx_not_esp", "rx_no_sa", "rx_auth_passed", "rx_crypto_passed",
                          "rx_bad_packet"})
