"""PF_KEY errors and the FreeBSD <-> host errno mapping.

Two numbering systems meet here:

* **wire errno** -- ``sadb_msg_errno`` carries FreeBSD's ``sys/sys/errno.h``
  numbers (ENOBUFS 55, EOPNOTSUPP 45, EAFNOSUPPORT 47 ...), so the bytes we put on
  a PF_KEY socket are the bytes FreeBSD puts there;
* **host errno** -- Python exceptions carry the running host's numbers, so
  ``exc.errno == errno.ENOBUFS`` holds and ``os.strerror`` works.

``FREEBSD_ERRNO`` (name -> FreeBSD number) is the single table; ``to_wire`` and
``from_wire`` map between the two, both ways.  ``freebsd_strerror`` gives the
text FreeBSD's libc prints (setkey prints it), which differs from glibc's for a
few codes (EBUSY "Device busy", EAFNOSUPPORT "... by protocol family").

Every protocol failure is a ``PfkeyError`` (an ``OSError``).  Its ``delivery``
says how FreeBSD reports it: ``Delivery.SEND`` -- the ``send()`` system call
fails and no message is produced (keysock.c key_output, key.c key_align, the
MCLBYTES check); ``Delivery.REPLY`` -- the whole request is echoed to the sender
with ``sadb_msg_errno`` set (key.c key_senderror).
"""

from __future__ import annotations

import enum
import errno as _errno

# FreeBSD sys/sys/errno.h, name -> number.
FREEBSD_ERRNO: dict[str, int] = {
    "EPERM": 1, "ENOENT": 2, "ESRCH": 3, "EINTR": 4, "EIO": 5, "ENXIO": 6,
    "E2BIG": 7, "ENOEXEC": 8, "EBADF": 9, "ECHILD": 10, "EDEADLK": 11,
    "ENOMEM": 12, "EACCES": 13, "EFAULT": 14, "ENOTBLK": 15, "EBUSY": 16,
    "EEXIST": 17, "EXDEV": 18, "ENODEV": 19, "ENOTDIR": 20, "EISDIR": 21,
    "EINVAL": 22, "ENFILE": 23, "EMFILE": 24, "ENOTTY": 25, "ETXTBSY": 26,
    "EFBIG": 27, "ENOSPC": 28, "ESPIPE": 29, "EROFS": 30, "EMLINK": 31,
    "EPIPE": 32, "EDOM": 33, "ERANGE": 34, "EAGAIN": 35, "EINPROGRESS": 36,
    "EALREADY": 37, "ENOTSOCK": 38, "EDESTADDRREQ": 39, "EMSGSIZE": 40,
    "EPROTOTYPE": 41, "ENOPROTOOPT": 42, "EPROTONOSUPPORT": 43,
    "ESOCKTNOSUPPORT": 44, "EOPNOTSUPP": 45, "EPFNOSUPPORT": 46,
    "EAFNOSUPPORT": 47, "EADDRINUSE": 48, "EADDRNOTAVAIL": 49, "ENETDOWN": 50,
    "ENETUNREACH": 51, "ENETRESET": 52, "ECONNABORTED": 53, "ECONNRESET": 54,
    "ENOBUFS": 55, "EISCONN": 56, "ENOTCONN": 57, "ESHUTDOWN": 58,
    "ETOOMANYREFS": 59, "ETIMEDOUT": 60, "ECONNREFUSED": 61, "ELOOP": 62,
    "ENAMETOOLONG": 63, "EHOSTDOWN": 64, "EHOSTUNREACH": 65, "ENOTEMPTY": 66,
    "EPROCLIM": 67, "EUSERS": 68, "EDQUOT": 69, "ESTALE": 70, "EREMOTE": 71,
    "EBADRPC": 72, "ERPCMISMATCH": 73, "EPROGUNAVAIL": 74, "EPROGMISMATCH": 75,
    "EPROCUNAVAIL": 76, "ENOLCK": 77, "ENOSYS": 78, "EFTYPE": 79, "EAUTH": 80,
    "ENEEDAUTH": 81, "EIDRM": 82, "ENOMSG": 83, "EOVERFLOW": 84,
    "ECANCELED": 85, "EILSEQ": 86, "ENOATTR": 87, "EDOOFUS": 88, "EBADMSG": 89,
    "EMULTIHOP": 90, "ENOLINK": 91, "EPROTO": 92, "ENOTCAPABLE": 93,
    "ECAPMODE": 94, "ENOTRECOVERABLE": 95, "EOWNERDEAD": 96, "EINTEGRITY": 97,
}
# FreeBSD aliases: EWOULDBLOCK = EAGAIN, ENOTSUP = EOPNOTSUPP.
_FREEBSD_ALIASES = {"EWOULDBLOCK": "EAGAIN", "ENOTSUP": "EOPNOTSUPP"}

# FreeBSD lib/libc/gen/errlst.c texts, by FreeBSD number.
_FREEBSD_STRERROR: dict[int, str] = {
    0: "No error: 0", 1: "Operation not permitted", 2: "No such file or directory",
    3: "No such process", 4: "Interrupted system call", 5: "Input/output error",
    6: "Device not configured", 7: "Argument list too long", 8: "Exec format error",
    9: "Bad file descriptor", 10: "No child processes", 11: "Resource deadlock avoided",
    12: "Cannot allocate memory", 13: "Permission denied", 14: "Bad address",
    15: "Block device required", 16: "Device busy", 17: "File exists",
    18: "Cross-device link", 19: "Operation not supported by device",
    20: "Not a directory", 21: "Is a directory", 22: "Invalid argument",
    23: "Too many open files in system", 24: "Too many open files",
    25: "Inappropriate ioctl for device", 26: "Text file busy", 27: "File too large",
    28: "No space left on device", 29: "Illegal seek", 30: "Read-only file system",
    31: "Too many links", 32: "Broken pipe", 33: "Numerical argument out of domain",
    34: "Result too large", 35: "Resource temporarily unavailable",
    36: "Operation now in progress", 37: "Operation already in progress",
    38: "Socket operation on non-socket", 39: "Destination address required",
    40: "Message too long", 41: "Protocol wrong type for socket",
    42: "Protocol not available", 43: "Protocol not supported",
    44: "Socket type not supported", 45: "Operation not supported",
    46: "Protocol family not supported",
    47: "Address family not supported by protocol family",
    48: "Address already in use", 49: "Can't assign requested address",
    50: "Network is down", 51: "Network is unreachable",
    52: "Network dropped connection on reset", 53: "Software caused connection abort",
    54: "Connection reset by peer", 55: "No buffer space available",
    56: "Socket is already connected", 57: "Socket is not connected",
    58: "Can't send after socket shutdown", 59: "Too many references: can't splice",
    60: "Operation timed out", 61: "Connection refused",
    62: "Too many levels of symbolic links", 63: "File name too long",
    64: "Host is down", 65: "No route to host", 66: "Directory not empty",
    67: "Too many processes", 68: "Too many users", 69: "Disc quota exceeded",
    70: "Stale NFS file handle", 71: "Too many levels of remote in path",
    72: "RPC struct is bad", 73: "RPC version wrong", 74: "RPC prog. not avail",
    75: "Program version wrong", 76: "Bad procedure for program",
    77: "No locks available", 78: "Function not implemented",
    79: "Inappropriate file type or format", 80: "Authentication error",
    81: "Need authenticator", 82: "Identifier removed",
    83: "No message of desired type", 84: "Value too large to be stored in data type",
    85: "Operation canceled", 86: "Illegal byte sequence", 87: "Attribute not found",
    88: "Programming error", 89: "Bad message", 90: "Multihop attempted",
    91: "Link has been severed", 92: "Protocol error", 93: "Capabilities insufficient",
    94: "Not permitted in capability mode", 95: "State not recoverable",
    96: "Previous owner died", 97: "Integrity check failed",
}

_WIRE_BY_HOST: dict[int, int] = {}
_HOST_BY_WIRE: dict[int, int] = {}
_NAME_BY_WIRE: dict[int, str] = {}
for _name, _wire in FREEBSD_ERRNO.items():
    _NAME_BY_WIRE[_wire] = _name
    _host = getattr(_errno, _name, None)
    if _host is not None:
        _WIRE_BY_HOST.setdefault(_host, _wire)
        _HOST_BY_WIRE[_wire] = _host
for _alias, _name in _FREEBSD_ALIASES.items():
    _host = getattr(_errno, _alias, None)
    if _host is not None:
        _WIRE_BY_HOST.setdefault(_host, FREEBSD_ERRNO[_name])


def to_wire(host_errno: int) -> int:
    """Host errno -> FreeBSD number for ``sadb_msg_errno``.

    A host errno FreeBSD does not have (Linux's ECHRNG, say) has no faithful
    wire form; it maps to EINVAL rather than to a number FreeBSD would misread.
    """
    if host_errno == 0:
        return 0
    return _WIRE_BY_HOST.get(host_errno, FREEBSD_ERRNO["EINVAL"])


def from_wire(wire_errno: int) -> int:
    """FreeBSD ``sadb_msg_errno`` -> host errno.

    FreeBSD-only codes (EPROCLIM, EFTYPE, EAUTH, ENOATTR, EDOOFUS, ENOTCAPABLE,
    ECAPMODE, EINTEGRITY ...) have no host number and map to EIO.
    """
    if wire_errno == 0:
        return 0
    return _HOST_BY_WIRE.get(wire_errno, _errno.EIO)


def wire_name(wire_errno: int) -> str:
    """FreeBSD symbolic name of a wire errno (``'ENOBUFS'``), or its number."""
    return _NAME_BY_WIRE.get(wire_errno, str(wire_errno))


def freebsd_strerror(wire_errno: int) -> str:
    """strerror(3) text as FreeBSD's libc prints it, for a FreeBSD errno."""
    text = _FREEBSD_STRERROR.get(wire_errno)
    return text if text is not None else f"Unknown error: {wire_errno}"


def strerror_host(host_errno: int) -> str:
    """FreeBSD's strerror text for a host errno."""
    return freebsd_strerror(to_wire(host_errno))


class Delivery(enum.Enum):
    """How FreeBSD reports a failure to the PF_KEY sender."""

    SEND = "send"    # send(2) fails with the errno; no message is produced
    REPLY = "reply"  # the request is echoed back with sadb_msg_errno set


class PfkeyError(OSError):
    """A PF_KEY protocol failure carrying the errno FreeBSD returns.

    ``.errno`` is the host errno (compare it with the ``errno`` module);
    ``.wire_errno`` is FreeBSD's number, what goes into ``sadb_msg_errno``;
    ``.delivery`` says whether FreeBSD fails ``send()`` or sends an error reply.
    Subclasses set the defaults; any instance may override them.
    """

    default_errno: int = _errno.EINVAL
    default_delivery: Delivery = Delivery.REPLY
    # OSError's are Optional; __init__ always passes both, so never None here.
    errno: int
    strerror: str

    def __init__(self, message: str, errno: int | None = None,
                 delivery: Delivery | None = None) -> None:
        code = self.default_errno if errno is None else errno
        super().__init__(code, message)
        self.delivery: Delivery = self.default_delivery if delivery is None else delivery

    @property
    def wire_errno(self) -> int:
        return to_wire(self.errno)

    def __str__(self) -> str:
        return (f"{freebsd_strerror(self.wire_errno)} "
                f"({wire_name(self.wire_errno)}): {self.strerror}")

    def __reduce__(self) -> tuple[type[PfkeyError], tuple[str, int, Delivery]]:
        return (type(self), (self.strerror, self.errno, self.delivery))


# --- failures FreeBSD reports as a send() error (keysock.c key_output,
#     key.c key_parse's MCLBYTES check, key_align / key_validate_ext) ---------

class SendError(PfkeyError):
    """Base of the failures that make send(2) itself fail."""

    default_delivery = Delivery.SEND


class ShortMessage(SendError):
    """Fewer than 16 bytes (keysock.c key_output: out_tooshort)."""


class LengthMismatch(SendError):
    """Buffer length differs from sadb_msg_len * 8 (keysock.c key_output: out_invlen)."""


class MessageTooBig(SendError):
    """More than MCLBYTES (2048) bytes (key.c key_parse)."""

    default_errno = _errno.ENOBUFS


class UnknownExtension(SendError):
    """Extension type not in key_align's accepted list (0, 17, > 31)."""


class DuplicateExtension(SendError):
    """The same extension type twice (key_align: out_dupext)."""


class BadExtensionLength(SendError):
    """Length outside key.c's minsize/maxsize table, or an address/ident-addr
    extension whose length is not 8 + ALIGN8(sa_len) (key_validate_ext)."""


class TruncatedExtension(SendError):
    """An extension runs past the end of the message: key_align's m_pulldown
    fails and send() returns ENOBUFS."""

    default_errno = _errno.ENOBUFS


class ExtensionsLengthMismatch(SendError):
    """Extensions do not add up to sadb_msg_len (key_align: off != end)."""


# --- failures FreeBSD reports as an error reply (key_parse senderror and the
#     handlers' key_senderror) ------------------------------------------------

class ReplyError(PfkeyError):
    """Base of the failures FreeBSD answers with an error reply."""

    default_delivery = Delivery.REPLY


class BadVersion(ReplyError):
    """sadb_msg_version is not PF_KEY_V2."""


class BadMessageType(ReplyError):
    """sadb_msg_type above SADB_MAX, or a type with no handler."""


class BadSatype(ReplyError):
    """sadb_msg_satype not allowed for this message type (key_parse)."""


class SatypeNotSupported(ReplyError):
    """RSVP, OSPFv2, RIPv2 or MIP satype (key_parse: EOPNOTSUPP)."""

    default_errno = _errno.EOPNOTSUPP


class BadAddress(ReplyError):
    """src/dst address mismatch: proto, family, sa_len or prefixlen (key_parse)."""


class AddressFamilyNotSupported(ReplyError):
    """An address family other than AF_INET / AF_INET6 (key_parse)."""

    default_errno = _errno.EAFNOSUPPORT


class EncodeError(PfkeyError):
    """A value cannot be put on the wire (a field out of range, a name too long).

    Raised by ``encode()`` for messages built in Python; never by decoding.
    """


__all__ = [
    "FREEBSD_ERRNO", "to_wire", "from_wire", "wire_name", "freebsd_strerror",
    "strerror_host", "Delivery", "PfkeyError", "SendError", "ShortMessage",
    "LengthMismatch", "MessageTooBig", "UnknownExtension", "DuplicateExtension",
    "BadExtensionLength", "TruncatedExtension", "ExtensionsLengthMismatch",
    "ReplyError", "BadVersion", "BadMessageType", "BadSatype",
    "SatypeNotSupported", "BadAddress", "AddressFamilyNotSupported", "EncodeError",
]
