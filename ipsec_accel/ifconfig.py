"""ifconfig(8), as far as the model needs it: ``create``/``destroy``
(cloners), ``up``/``down``, ``mtu N``, ``name X``, capability keywords
(``ipsec``/``-ipsec`` toggles IFCAP2_IPSEC_OFFLOAD through SIOCSIFCAP /
SIOCSIFCAPNV), ``vlan N vlandev X``, ``-a`` and ``-l``; the status text
follows ``sbin/ifconfig/ifconfig.c`` for the fields modelled.
"""

from __future__ import annotations

import errno
import os
import sys
from typing import IO, Sequence

from .if_vlan import IfVlan, VlanParams
from .ifnet import (
    ETHERTYPE_VLAN, IFCAP_NAMES, IFCAP_NV, IFF_NAMES, IFT_ETHER, IFT_L2VLAN, IfIoctl,
    IfnetRegistry, IfReq, Ifnet,
)

#: ifconfig keywords for capabilities: keyword -> capability names.
CAP_KEYWORDS: dict[str, tuple[str, ...]] = {
    "rxcsum": ("RXCSUM",), "txcsum": ("TXCSUM",), "rxcsum6": ("RXCSUM_IPV6",),
    "txcsum6": ("TXCSUM_IPV6",), "netcons": ("NETCONS",), "polling": ("POLLING",),
    "vlanmtu": ("VLAN_MTU",), "vlanhwtag": ("VLAN_HWTAGGING",),
    "vlanhwcsum": ("VLAN_HWCSUM",), "vlanhwfilter": ("VLAN_HWFILTER",),
    "vlanhwtso": ("VLAN_HWTSO",), "tso4": ("TSO4",), "tso6": ("TSO6",),
    "tso": ("TSO4", "TSO6"), "lro": ("LRO",), "toe": ("TOE4", "TOE6"),
    "txrtlmt": ("TXRTLMT",), "hwrxtstmp": ("HWRXTSTMP",), "mextpg": ("MEXTPG",),
    "txtls": ("TXTLS4", "TXTLS6"), "txtlsrtlmt": ("TXTLS_RTLMT",),
    "rxtls": ("RXTLS4", "RXTLS6"), "vxlanhwcsum": ("VXLAN_HWCSUM",),
    "vxlanhwtso": ("VXLAN_HWTSO",), "ipsec": ("IPSEC",),
}


def _bits(value: int, names: Sequence[str], prefix: str) -> str:
    # print_bits of ifconfig_netlink.c: "<A,B>" or nothing when no bit is set.
    parts = []
    i = 0
    v = value
    while v:
        if v & 1:
            parts.append(names[i] if i < len(names) else f"{prefix}_{i}")
        v >>= 1
        i += 1
    return f"<{','.join(parts)}>" if parts else ""


def ifconfig_status(ifp: Ifnet) -> str:
    """The status block ``ifconfig <if>`` prints (the fields modelled)."""
    flags = ifp.flags
    lines = [f"{ifp.if_xname}: flags={flags:x}{_bits(flags, IFF_NAMES, 'IFF')} "
             f"metric {ifp.if_metric} mtu {ifp.if_mtu}"]
    caps = ifp.if_capenable | (ifp.if_capenable2 << 32)
    lines.append(f"\toptions={ifp.if_capenable:x}{_bits(caps, IFCAP_NAMES, 'IFCAPS')}")
    if ifp.if_description:
        lines.insert(1, f"\tdescription: {ifp.if_description}")
    if ifp.if_lladdr is not None and ifp.if_type in (IFT_ETHER, IFT_L2VLAN):
        lines.append("\tether " + ":".join(f"{b:02x}" for b in ifp.if_lladdr))
    if ifp.if_type == IFT_L2VLAN:
        ifv: IfVlan = ifp.if_softc
        trunk = ifv.ifv_trunk
        parent = trunk.parent.if_xname if trunk is not None else "<none>"
        vid = ifv.ifv_vid if trunk is not None else 0
        proto = "802.1q" if ifv.ifv_proto == ETHERTYPE_VLAN else "802.1ad"
        lines.append(f"\tvlan: {vid} vlanproto: {proto} vlanpcp: {ifv.ifv_pcp} "
                     f"parent interface: {parent}")
    return "\n".join(lines) + "\n"


def _perror(err: IO[str], cmd: str, code: int) -> None:
    # ifconfig's Perror: ENXIO/EPERM get their own wording, the rest err(3).
    if code == errno.ENXIO:
        err.write(f"ifconfig: {cmd}: no such interface\n")
    elif code == errno.EPERM:
        err.write(f"ifconfig: {cmd}: permission denied\n")
    else:
        err.write(f"ifconfig: {cmd}: {os.strerror(code)}\n")


def ifconfig(registry: IfnetRegistry, argv: Sequence[str], out: IO[str] | None = None,
             err: IO[str] | None = None) -> int:
    """An ifconfig(8)-like front end; returns the exit status.

    ``ifconfig(reg, [])`` / ``["-a"]`` lists every interface, ``["-l"]``
    their names; ``["mce0"]`` shows one; ``["vlan", "create"]`` (prints the
    name chosen), ``["vlan100", "create", "vlan", "100", "vlandev", "mce0"]``,
    ``["mce0.100", "create"]``, ``["vlan100", "destroy"]``,
    ``["mce0", "up"|"down"|"mtu", "9000"|"name", "x0"|"ipsec"|"-ipsec"|...]``.
    """
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    args = list(argv)
    if not args or args == ["-a"]:
        for each in registry:
            out.write(ifconfig_status(each))
        return 0
    if args == ["-l"]:
        out.write(" ".join(registry.names()) + "\n")
        return 0
    name = args.pop(0)
    if args and args[0] in ("create", "destroy"):
        verb = args.pop(0)
        if verb == "destroy":
            code = registry.if_clone_destroy(name)
            if code:
                _perror(err, "SIOCIFDESTROY", code)
                return 1
            return 0
        params, rest, perr = _clone_params(args)
        if perr:
            err.write(f"ifconfig: {perr}\n")
            return 1
        code, created = registry.if_clone_create(name, params)
        if code:
            _perror(err, "SIOCIFCREATE2", code)
            return 1
        if created != name:
            out.write(created + "\n")
        if not rest:
            return 0
        name, args = created, rest
    ifp = registry.ifunit(name)
    if ifp is None:
        err.write(f"ifconfig: interface {name} does not exist\n")
        return 1
    if not args:
        out.write(ifconfig_status(ifp))
        return 0
    return _ifconfig_apply(registry, ifp, args, err)


def _clone_params(args: list[str]) -> tuple[VlanParams | None, list[str], str]:
    """Pull ``vlan N`` / ``vlandev X`` (clone parameters) out of the args."""
    tag: int | None = None
    parent = ""
    rest: list[str] = []
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("vlan", "vlandev") and i + 1 < len(args):
            if a == "vlan":
                try:
                    tag = int(args[i + 1], 0)
                except ValueError:
                    return None, [], "invalid value for vlan"
            else:
                parent = args[i + 1]
            i += 2
            continue
        rest.append(a)
        i += 1
    if tag is None and not parent:
        return None, rest, ""
    if tag is None:
        return None, [], "must specify a tag for vlan create"
    if not parent:
        return None, [], "must specify a parent device for vlan create"
    return VlanParams(tag, parent), rest, ""


def _ifconfig_apply(reg: IfnetRegistry, ifp: Ifnet, args: list[str], err: IO[str]) -> int:
    vlan_tagv: int | None = None
    vlan_dev = ""
    i = 0
    while i < len(args):
        a = args[i]
        arg = args[i + 1] if i + 1 < len(args) else None
        if a in ("up", "down"):
            code = reg.if_setupdown(ifp, a == "up")
            if code:
                _perror(err, "SIOCSIFFLAGS", code)
                return 1
        elif a == "mtu":
            if arg is None or not arg.isdigit():
                err.write("ifconfig: mtu: bad value\n")
                return 1
            code = reg.if_setmtu(ifp, int(arg))
            if code:
                _perror(err, "SIOCSIFMTU", code)
                return 1
            i += 1
        elif a == "name":
            if arg is None:
                err.write("ifconfig: name: missing argument\n")
                return 1
            code = reg.ifioctl(ifp, IfIoctl.SIOCSIFNAME, IfReq(name=arg))
            if code:
                _perror(err, "ioctl SIOCSIFNAME (set name)", code)
                return 1
            i += 1
        elif a in ("vlan", "vlandev"):
            if arg is None:
                err.write(f"ifconfig: {a}: missing argument\n")
                return 1
            if a == "vlan":
                try:
                    vlan_tagv = int(arg, 0)
                except ValueError:
                    err.write("ifconfig: invalid value for vlan\n")
                    return 1
            else:
                vlan_dev = arg
            i += 1
        elif a == "-vlandev":
            code = reg.ifioctl(ifp, IfIoctl.SIOCSETVLAN, IfReq(vlan_parent=""))
            if code:
                _perror(err, "SIOCSETVLAN", code)
                return 1
        elif a.lstrip("-") in CAP_KEYWORDS:
            on = not a.startswith("-")
            code, what = _set_caps(reg, ifp, CAP_KEYWORDS[a.lstrip("-")], on)
            if code:
                _perror(err, a if what == "nv" else "SIOCSIFCAP", code)
                return 1
        else:
            err.write(f"ifconfig: {a}: bad value\n")
            return 1
        i += 1
    if (vlan_tagv is not None) != bool(vlan_dev):
        err.write("ifconfig: both vlan and vlandev must be specified\n")
        return 1
    if vlan_tagv is not None:
        code = reg.ifioctl(ifp, IfIoctl.SIOCSETVLAN,
                           IfReq(vlan_tag=vlan_tagv, vlan_parent=vlan_dev))
        if code:
            _perror(err, "SIOCSETVLAN", code)
            return 1
    return 0


def _set_caps(reg: IfnetRegistry, ifp: Ifnet, names: tuple[str, ...],
              on: bool) -> tuple[int, str]:
    # setifcap/setifcapnv: the nvlist path for IFCAP_NV interfaces and for any
    # second-word capability (which only exists there), SIOCSIFCAP otherwise.
    second_word = any(IFCAP_NAMES.index(n) >= 32 for n in names)
    if second_word or ifp.if_capabilities & IFCAP_NV:
        return reg.if_setcapnv(ifp, {n: on for n in names}), "nv"
    mask = 0
    for n in names:
        mask |= 1 << IFCAP_NAMES.index(n)
    flags = ifp.if_capenable | mask if on else ifp.if_capenable & ~mask
    flags &= ifp.if_capabilities       # setifcap masks with what is supported
    return reg.if_setcap(ifp, flags), "cap"


__all__ = ["CAP_KEYWORDS", "ifconfig", "ifconfig_status"]
