"""BSD ``struct sockaddr`` as PF_KEY v2 carries it: ``sockaddr_in``
(``netinet/in.h``) and ``sockaddr_in6`` (``netinet6/in6.h``) with ``sa_len``
first, inside ``sadb_address`` and ``sadb_x_ipsecrequest``
(``sys/net/pfkeyv2.h``).

A :class:`Sockaddr` keeps the raw bytes after the two header bytes, so any
family and any length round-trips exactly (key.c checks ``sa_len`` against
the extension; the model must be able to carry a lying one).  Port, flow
info and address are read from those bytes in network order, the scope id
in host order, as FreeBSD stores ``sin6_scope_id``.

Split out of :mod:`pfkey.extensions` (which re-exports both names) because
sockaddrs are used far beyond the codec: the SPD, the SAD, setkey and the
datapath all key on them.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from typing import NamedTuple, Optional, Union

from .errors import EncodeError
from .ext_codec import _tnew, _value
from .pfkeyv2 import AF_INET, AF_INET6

IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]

_IN = struct.Struct("!H4s8x")
_IN6 = struct.Struct("!HI16s")
_SCOPE = struct.Struct("<I")


@_value
class Sockaddr(NamedTuple):
    """A BSD ``struct sockaddr``: ``sa_len``, ``sa_family`` and the raw rest.

    ``data`` is the bytes after the two header bytes (14 for AF_INET, 26 for
    AF_INET6).  Build one with :meth:`inet`, :meth:`inet6` or :meth:`from_ip`;
    read it with :attr:`address`, :attr:`port`, :attr:`scope_id`.
    """

    family: int
    sa_len: int
    data: bytes

    @classmethod
    def inet(cls, address: str | bytes | ipaddress.IPv4Address, port: int = 0) -> "Sockaddr":
        """sockaddr_in (16 bytes): port and address in network order."""
        raw = address if isinstance(address, bytes) else ipaddress.IPv4Address(address).packed
        return _tnew(cls, (AF_INET, 16, _IN.pack(port, raw)))

    @classmethod
    def inet6(cls, address: str | bytes | ipaddress.IPv6Address, port: int = 0,
              scope_id: int = 0, flowinfo: int = 0) -> "Sockaddr":
        """sockaddr_in6 (28 bytes); ``fe80::1%3`` / ``fe80::1%em0`` scopes accepted."""
        if isinstance(address, str) and "%" in address:
            address, _, scope = address.partition("%")
            if scope.isdigit():
                scope_id = int(scope)
            else:
                try:
                    scope_id = socket.if_nametoindex(scope)
                except OSError:
                    scope_id = 0
        raw = address if isinstance(address, bytes) else ipaddress.IPv6Address(address).packed
        return _tnew(cls, (AF_INET6, 28, _IN6.pack(port, flowinfo, raw) + _SCOPE.pack(scope_id)))

    @classmethod
    def from_ip(cls, address: str | IPAddress, port: int = 0) -> "Sockaddr":
        """sockaddr_in or sockaddr_in6, whichever the address is."""
        if isinstance(address, str):
            ip = ipaddress.ip_address(address.partition("%")[0])
            if ip.version == 6:
                return cls.inet6(address, port)
            return cls.inet(ip, port)
        if address.version == 6:
            return cls.inet6(address, port)
        return cls.inet(address, port)

    def wire(self) -> bytes:
        """The sockaddr bytes, not padded (``sa_len`` bytes when consistent)."""
        if not (0 <= self.sa_len <= 255 and 0 <= self.family <= 255):
            raise EncodeError(f"sockaddr sa_len={self.sa_len} family={self.family} out of range")
        return bytes((self.sa_len, self.family)) + self.data

    @property
    def port(self) -> int:
        d = self.data
        if self.family in (AF_INET, AF_INET6) and len(d) >= 2:
            return (d[0] << 8) | d[1]
        return 0

    @property
    def address_bytes(self) -> bytes:
        if self.family == AF_INET:
            return self.data[2:6]
        if self.family == AF_INET6:
            return self.data[6:22]
        return b""

    @property
    def address(self) -> Optional[IPAddress]:
        """The IP address, or None for another family or a short sockaddr."""
        raw = self.address_bytes
        if self.family == AF_INET and len(raw) == 4:
            return ipaddress.IPv4Address(raw)
        if self.family == AF_INET6 and len(raw) == 16:
            return ipaddress.IPv6Address(raw)
        return None

    @property
    def scope_id(self) -> int:
        if self.family == AF_INET6 and len(self.data) >= 26:
            return int.from_bytes(self.data[22:26], "little")
        return 0

    @property
    def flowinfo(self) -> int:
        if self.family == AF_INET6 and len(self.data) >= 6:
            return int.from_bytes(self.data[2:6], "big")
        return 0

    @property
    def plen(self) -> int:
        """Full prefix length for the family (32 or 128), 0 otherwise."""
        return 32 if self.family == AF_INET else 128 if self.family == AF_INET6 else 0

    def with_port(self, port: int) -> "Sockaddr":
        if self.family not in (AF_INET, AF_INET6) or len(self.data) < 2:
            return self
        return _tnew(Sockaddr, (self.family, self.sa_len, port.to_bytes(2, "big") + self.data[2:]))

    def __str__(self) -> str:
        ip = self.address
        if ip is None:
            return f"<af {self.family} len {self.sa_len}>"
        return f"{ip}%{self.scope_id}" if self.scope_id else str(ip)

    def __repr__(self) -> str:
        ip = self.address
        if ip is not None and self.sa_len == (16 if self.family == AF_INET else 28) \
                and self == Sockaddr.from_ip(ip, self.port)._replace(data=self.data):
            extra = f", port={self.port}" if self.port else ""
            if self.scope_id:
                extra += f", scope_id={self.scope_id}"
            return f"Sockaddr.from_ip({str(ip)!r}{extra})"
        return f"Sockaddr(family={self.family}, sa_len={self.sa_len}, data={self.data!r})"

    @classmethod
    def parse(cls, buf: bytes, off: int, limit: int) -> "Sockaddr":
        """Read a sockaddr at ``off`` whose bytes may not go past ``limit``.

        Takes ``sa_len`` bytes (at least the two header bytes, at most up to
        ``limit``), so a lying ``sa_len`` never reads outside its container.
        """
        sa_len = buf[off]
        family = buf[off + 1] if off + 1 < limit else 0
        end = off + (sa_len if sa_len > 2 else 2)
        return _tnew(cls, (family, sa_len, buf[off + 2:end if end < limit else limit]))


__all__ = ["Sockaddr", "IPAddress"]
