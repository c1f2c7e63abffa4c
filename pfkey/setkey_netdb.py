"""The libc name services setkey's grammar calls, as FreeBSD answers them.

parse.y resolves three kinds of names:

* addresses -- ``parse_addr()``: ``getaddrinfo(host, port, {family from
  -4/-6, AI_NUMERICHOST with -n, SOCK_DGRAM, IPPROTO_UDP})``; errors are
  printed with ``gai_strerror`` (FreeBSD ``lib/libc/net/getaddrinfo.c``,
  ``gai_strerror.c``);
* ports in ``[...]`` -- the ``port`` argument of that call: a decimal number
  up to 65535 or a ``udp`` service name from ``/etc/services``
  (``getaddrinfo.c get_port``); anything else is EAI_SERVICE;
* upper-layer protocols -- ``getprotobyname()`` over ``/etc/protocols``
  (FreeBSD ``lib/libc/net/protocols``), exact and case-sensitive on names and
  aliases, first match wins.

Everything here is injectable so tests never touch the host's DNS, services
or interfaces: :class:`Resolver` takes a static ``hosts`` table, an
``interfaces`` name -> index table (for ``fe80::1%em0`` scopes), a
``services`` table, and ``system=True`` to ask the host's resolver for names
that are not numeric (what setkey does without ``-n``).

Numeric addresses follow FreeBSD's ``explore_numeric_scope``: IPv4 accepts
what ``inet_aton`` accepts (``127.1``, ``0x7f.1``) and nothing with other
characters; IPv6 uses ``inet_pton``; a ``%scope`` is an interface name for
link-local (and link/node-local multicast) addresses, else a decimal number;
an unknown scope, or an address of the other family than ``-4``/``-6`` asks
for, is EAI_NONAME.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Callable, Mapping, Optional, Sequence

from .extensions import Sockaddr
from .pfkeyv2 import AF_INET, AF_INET6
from .policy import GAI_ERRMSG, inet_aton

AF_UNSPEC = 0

# getaddrinfo error codes (FreeBSD netdb.h) used here.
EAI_FAMILY = 5
EAI_NONAME = 8
EAI_SERVICE = 9

_AF_INET_CHARS = frozenset("0123456789.xabcdefXABCDEF")


class GaiError(Exception):
    """A getaddrinfo failure; ``str()`` is FreeBSD's ``gai_strerror`` text."""

    def __init__(self, code: int) -> None:
        self.code = code
        text = GAI_ERRMSG[code] if 0 <= code < len(GAI_ERRMSG) else "Unknown error"
        super().__init__(text)
        self.text = text


# ---------------------------------------------------------------------------
# /etc/protocols (FreeBSD lib/libc/net/protocols): "name number [aliases]"
# ---------------------------------------------------------------------------

_PROTOCOLS_TEXT = """
ip 0 IP|icmp 1 ICMP|igmp 2 IGMP|ggp 3 GGP|ipencap 4 IP-ENCAP|st2 5 ST2|tcp 6 TCP
cbt 7 CBT|egp 8 EGP|igp 9 IGP|bbn-rcc 10 BBN-RCC-MON|nvp 11 NVP-II|pup 12 PUP
argus 13 ARGUS|emcon 14 EMCON|xnet 15 XNET|chaos 16 CHAOS|udp 17 UDP|mux 18 MUX
dcn 19 DCN-MEAS|hmp 20 HMP|prm 21 PRM|xns-idp 22 XNS-IDP|trunk-1 23 TRUNK-1
trunk-2 24 TRUNK-2|leaf-1 25 LEAF-1|leaf-2 26 LEAF-2|rdp 27 RDP|irtp 28 IRTP
iso-tp4 29 ISO-TP4|netblt 30 NETBLT|mfe-nsp 31 MFE-NSP|merit-inp 32 MERIT-INP
dccp 33 DCCP|3pc 34 3PC|idpr 35 IDPR|xtp 36 XTP|ddp 37 DDP|idpr-cmtp 38 IDPR-CMTP
tp++ 39 TP++|il 40 IL|ipv6 41 IPV6|sdrp 42 SDRP|ipv6-route 43 IPV6-ROUTE
ipv6-frag 44 IPV6-FRAG|idrp 45 IDRP|rsvp 46 RSVP|gre 47 GRE|dsr 48 DSR|bna 49 BNA
esp 50 ESP|ah 51 AH|i-nlsp 52 I-NLSP|swipe 53 SWIPE|narp 54 NARP|mobile 55 MOBILE
tlsp 56 TLSP|skip 57 SKIP|ipv6-icmp 58 IPV6-ICMP icmp6|ipv6-nonxt 59 IPV6-NONXT
ipv6-opts 60 IPV6-OPTS|cftp 62 CFTP|sat-expak 64 SAT-EXPAK|kryptolan 65 KRYPTOLAN
rvd 66 RVD|ippc 67 IPPC|sat-mon 69 SAT-MON|visa 70 VISA|ipcv 71 IPCV|cpnx 72 CPNX
cphb 73 CPHB|wsn 74 WSN|pvp 75 PVP|br-sat-mon 76 BR-SAT-MON|sun-nd 77 SUN-ND
wb-mon 78 WB-MON|wb-expak 79 WB-EXPAK|iso-ip 80 ISO-IP|vmtp 81 VMTP
secure-vmtp 82 SECURE-VMTP|vines 83 VINES|ttp 84 TTP|nsfnet-igp 85 NSFNET-IGP
dgp 86 DGP|tcf 87 TCF|eigrp 88 EIGRP|ospf 89 OSPFIGP|sprite-rpc 90 Sprite-RPC
larp 91 LARP|mtp 92 MTP|ax.25 93 AX.25|ipip 94 IPIP|micp 95 MICP|scc-sp 96 SCC-SP
etherip 97 ETHERIP|encap 98 ENCAP|gmtp 100 GMTP|ifmp 101 IFMP|pnni 102 PNNI
pim 103 PIM|aris 104 ARIS|scps 105 SCPS|qnx 106 QNX|a/n 107 A/N|ipcomp 108 IPComp
snp 109 SNP|compaq-peer 110 Compaq-Peer|ipx-in-ip 111 IPX-in-IP|carp 112 CARP vrrp
pgm 113 PGM|l2tp 115 L2TP|ddx 116 DDX|iatp 117 IATP|stp 118 STP|srp 119 SRP
uti 120 UTI|smp 121 SMP|sm 122 SM|ptp 123 PTP|isis 124 ISIS|fire 125 FIRE
crtp 126 CRTP|crudp 127 CRUDP|sscopmce 128 SSCOPMCE|iplt 129 IPLT|sps 130 SPS
pipe 131 PIPE|sctp 132 SCTP|fc 133 FC|rsvp-e2e-ignore 134 RSVP-E2E-IGNORE
mobility-header 135 Mobility-Header|udplite 136 UDPLite|mpls-in-ip 137 MPLS-IN-IP
manet 138 MANET|hip 139 HIP|shim6 140 SHIM6|wesp 141 WESP|rohc 142 ROHC
pfsync 240 PFSYNC|divert 258 DIVERT
"""


def _parse_table(text: str) -> tuple[tuple[tuple[str, ...], int], ...]:
    rows = []
    for entry in text.replace("\n", "|").split("|"):
        words = entry.split()
        if words:
            rows.append(((words[0], *words[2:]), int(words[1])))
    return tuple(rows)


# (names, number) in file order.  Note: FreeBSD has no "ipv4" entry (NetBSD
# has one), so ``spdadd ... ipv4 -P`` is "invalid upper layer protocol" there.
FREEBSD_PROTOCOLS: tuple[tuple[tuple[str, ...], int], ...] = _parse_table(_PROTOCOLS_TEXT)

# udp entries of FreeBSD's /etc/services that setkey scripts plausibly name
# (getaddrinfo looks ports up with SOCK_DGRAM, i.e. as "udp").
_SERVICES_TEXT = """
echo 7|discard 9 sink null|daytime 13|ftp-data 20|ftp 21|ssh 22|telnet 23
smtp 25 mail|time 37 timserver|domain 53|bootps 67 dhcps|bootpc 68 dhcpc
tftp 69|http 80 www www-http|kerberos 88 kerberos-sec|pop3 110|sunrpc 111 rpcbind
ntp 123|netbios-ns 137|netbios-dgm 138|netbios-ssn 139|imap 143 imap2 imap4
snmp 161|snmptrap 162 snmp-trap|bgp 179|ldap 389|https 443|isakmp 500 ike
syslog 514|router 520 route routed|ripng 521|l2f 1701 l2tp|radius 1812
radacct 1813 radius-acct|nfsd 2049 nfs|ipsec-nat-t 4500|sip 5060|sip-tls 5061
openvpn 1194|pptp 1723|rtsp 554|submission 587|ldaps 636|kerberos-adm 749
"""
FREEBSD_UDP_SERVICES: tuple[tuple[tuple[str, ...], int], ...] = _parse_table(_SERVICES_TEXT)


def getprotobyname(name: str,
                   table: Sequence[tuple[tuple[str, ...], int]] = FREEBSD_PROTOCOLS
                   ) -> Optional[int]:
    """``getprotobyname(name)->p_proto`` (also getservbyname's lookup): exact
    name or alias, first entry in file order."""
    for names, number in table:
        if name in names:
            return number
    return None


def _is_scoped(addr: bytes) -> bool:
    # IN6_IS_ADDR_LINKLOCAL, IN6_IS_ADDR_MC_LINKLOCAL, IN6_IS_ADDR_MC_NODELOCAL
    if addr[0] == 0xFE and (addr[1] & 0xC0) == 0x80:
        return True
    return addr[0] == 0xFF and (addr[1] & 0x0F) in (0x01, 0x02)


class Resolver:
    """``getaddrinfo(host, port, {family, AI_NUMERICHOST?, SOCK_DGRAM, UDP})``.

    Call it as ``resolver(host, port, family, numeric)``; it returns the
    sockaddrs in getaddrinfo's order or raises :class:`GaiError`.  ``family``
    is 0 (AF_UNSPEC), AF_INET (2) or AF_INET6 (28, FreeBSD's value);
    ``numeric`` is AI_NUMERICHOST (setkey's ``-n``).

    ``hosts`` maps names to address strings (like /etc/hosts, consulted for
    non-numeric names); ``interfaces`` maps interface names to indexes for
    IPv6 scopes; ``services`` is the udp services table; ``system`` lets names
    not in ``hosts`` go to the host's own resolver.  The host's resolver is
    never asked with ``-n`` or for anything that looks numeric.
    """

    def __init__(self, hosts: Optional[Mapping[str, Sequence[str]]] = None, *,
                 interfaces: Optional[Mapping[str, int]] = None,
                 services: Sequence[tuple[tuple[str, ...], int]] = FREEBSD_UDP_SERVICES,
                 system: bool = False) -> None:
        self.hosts = dict(hosts or {})
        self.interfaces = dict(interfaces or {})
        self.services = services
        self.system = system

    def if_nametoindex(self, name: str) -> int:
        """``if_nametoindex(3)`` over the ``interfaces`` table (0 = unknown)."""
        return self.interfaces.get(name, 0)

    def port(self, port: Optional[str]) -> int:
        """getaddrinfo.c ``get_port``: number (<= 65535) or udp service name."""
        if port is None:
            return 0
        if port and port.isascii() and port.isdigit():
            # str2number refuses values above UINT_MAX (then no service has
            # such a name), get_port values above 65535: EAI_SERVICE either way
            digits = port.lstrip("0") or "0"
            if len(digits) > 5 or int(digits) > 65535:
                raise GaiError(EAI_SERVICE)
            return int(digits)
        number = getprotobyname(port, self.services)
        if number is None:
            raise GaiError(EAI_SERVICE)
        return number

    def numeric(self, host: str, family: int) -> Optional[Sockaddr]:
        """explore_numeric_scope: the sockaddr (port 0) for a numeric host,
        None when the text is not numeric for the allowed families.  Raises
        EAI_NONAME for a numeric IPv6 address with a bad scope."""
        if family in (AF_UNSPEC, AF_INET) and host and all(c in _AF_INET_CHARS for c in host):
            raw4 = inet_aton(host)
            if raw4 is not None:
                return Sockaddr.inet(raw4)
        if family in (AF_UNSPEC, AF_INET6):
            addr, pct, scope = host.partition("%")
            try:
                raw6 = ipaddress.IPv6Address(addr).packed if addr.isascii() else None
            except ValueError:
                raw6 = None
            if raw6 is not None:
                scope_id = 0
                if pct:
                    sid = self._scope_id(scope, raw6)
                    if sid is None:
                        raise GaiError(EAI_NONAME)
                    scope_id = sid
                return Sockaddr.inet6(raw6, scope_id=scope_id)
        return None

    def _scope_id(self, scope: str, addr: bytes) -> Optional[int]:
        # ip6_str2scopeid: interface names only for link-local scopes, else
        # (or when the name is unknown) a decimal number fitting 32 bits.
        if not scope:
            return None
        if _is_scoped(addr):
            idx = self.if_nametoindex(scope)
            if idx:
                return idx
        if scope.isascii() and scope.isdigit():
            digits = scope.lstrip("0") or "0"
            if len(digits) <= 10 and int(digits) <= 0xFFFFFFFF:
                return int(digits)
        return None

    def names(self, host: str, family: int) -> list[Sockaddr]:
        """Addresses for a non-numeric name: ``hosts``, then the system."""
        out: list[Sockaddr] = []
        for text in self.hosts.get(host, ()):
            sa = self.numeric(text, family)
            if sa is not None:
                out.append(sa)
        if out or host in self.hosts or not self.system:
            if not out:
                raise GaiError(EAI_NONAME)
            return out
        if ":" in host or "%" in host or not host.isascii():
            raise GaiError(EAI_NONAME)
        fam = {AF_UNSPEC: socket.AF_UNSPEC, AF_INET: socket.AF_INET,
               AF_INET6: socket.AF_INET6}[family]
        try:
            infos = socket.getaddrinfo(host, None, fam, socket.SOCK_DGRAM, socket.IPPROTO_UDP)
        except (OSError, UnicodeError, ValueError):
            raise GaiError(EAI_NONAME) from None
        for af, _, _, _, sockaddr in infos:
            if af == socket.AF_INET:
                out.append(Sockaddr.inet(str(sockaddr[0])))
            elif af == socket.AF_INET6:
                ip = str(sockaddr[0]).partition("%")[0]
                out.append(Sockaddr.inet6(ip, scope_id=int(sockaddr[3])))  # type: ignore[misc]
        if not out:
            raise GaiError(EAI_NONAME)
        return out

    def __call__(self, host: str, port: Optional[str], family: int,
                 numeric: bool) -> list[Sockaddr]:
        # FreeBSD resolves the service first (explore_* all call get_port
        # before looking at the host), so a bad port wins over a bad host.
        portnum = self.port(port)
        sa = self.numeric(host, family)
        if sa is not None:
            found = [sa]
        elif numeric:
            raise GaiError(EAI_NONAME)
        else:
            found = self.names(host, family)
        return [s.with_port(portnum) for s in found]


#: The resolver setkey uses when none is given: numeric addresses, and the
#: host's resolver for names when ``-n`` is absent.
def default_resolver() -> Resolver:
    return Resolver(system=True)


AddressResolver = Callable[[str, Optional[str], int, bool], Sequence[Sockaddr]]

__all__ = [
    "AF_UNSPEC", "EAI_FAMILY", "EAI_NONAME", "EAI_SERVICE", "GaiError", "Resolver",
    "AddressResolver", "default_resolver", "getprotobyname", "FREEBSD_PROTOCOLS",
    "FREEBSD_UDP_SERVICES",
]
