"""tools/setkey.py: FreeBSD setkey(8)'s command line, output and exit codes,
embedded mode (an in-process host).

Facts from FreeBSD ``sbin/setkey/setkey.c`` (main 2024-10, RTEMS libbsd copy)
and pfkey_setkey_reference.md §D.1 / §E: getopt ``acde:f:ghltvxDFP``; usage on
stdout and exit 1; ``err(-1, "fopen")`` exits 255; postproc prints
``The result of line N: <strerror>.`` and setkey goes on (exit 0); parse
errors print yyerror's line and ``parse failed, line N.`` and exit 1.
Golden dumps use a FakeClock at 2025-01-05 12:00:00 UTC, pid 4242 and UTC.
"""

from __future__ import annotations

import importlib.util
import io
import os
import struct
import subprocess
import sys
from datetime import timezone
from pathlib import Path
from typing import Any, NamedTuple, Optional

import pytest

from ipsec_accel.host import Host
from ipsec_accel.ifnet import Ifnet
from ipsec_accel.taskqueue import TqMode
from pfkey import FakeClock, decode
from pfkey.extensions import Sockaddr
from pfkey.key_debug import kdebug_sadb
from pfkey.key_testing import getspi_msg, spd_msg
from pfkey.keydb import ipsecrequest, secasindex, secpolicy
from pfkey.pfkeyv2 import SADB
from pfkey.setkey_netdb import Resolver
from pfkey.setkey_parse import SetkeyParseError, SetkeyParser
from pfkey.spd import SecPolicyIndex
from shared_corpus import SETKEY_CORPUS as CORPUS
from tools import setkey

ROOT = Path(__file__).resolve().parents[1]
PID = 4242
HAVE_OFFLOAD = importlib.util.find_spec("ipsec_accel.ipsec_offload") is not None

#: usage() of FreeBSD sbin/setkey/setkey.c with -e (RTEMS/rtems-libbsd
#: freebsd/sbin/setkey/setkey.c = FreeBSD main 2024-10-29; the same in the
#: newest freebsd-src fork read, fel1x-developer/freebsd-src 2d614aa2).  Its
#: getopt string is "acde:f:ghltvxDFP".  setkey.8's SYNOPSIS differs: it
#: spells the line ``-e script`` and the dump line ``[-Pgltv] -D``.
USAGE = ('usage: setkey [-v] -c\n'
         '       setkey [-v] -f filename\n'
         '       setkey [-v] -e "<script>"\n'
         '       setkey [-Pagltv] -D\n'
         '       setkey [-Pv] -F\n'
         '       setkey [-h] -x\n')


class Result(NamedTuple):
    rc: int
    out: str
    err: str


def run(host: Optional[Host], *args: str, stdin: Optional[str] = None,
        env: Optional[dict[str, str]] = None, **kw: Any) -> Result:
    out, err = io.StringIO(), io.StringIO()
    kw.setdefault("resolver", Resolver())
    rc = setkey.main(list(args), stdout=out, stderr=err, host=host, pid=PID, tz=timezone.utc,
                     environ=env if env is not None else {},
                     stdin=io.BytesIO(stdin.encode()) if stdin is not None else None, **kw)
    return Result(rc, out.getvalue(), err.getvalue())


@pytest.fixture
def host() -> Any:
    h = Host(clock=FakeClock(), offload=False, taskqueue_mode=TqMode.INLINE)
    yield h
    h.stop()


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------

def test_no_arguments_prints_usage(host: Host) -> None:
    """setkey.c main: ``ac == 1`` -> usage() on stdout, exit 1."""
    assert run(host) == Result(1, USAGE, "")


def test_d_is_accepted_by_getopt_but_handled_by_nobody(host: Host) -> None:
    """getopt string has ``d``; the switch has no case for it: usage()."""
    assert run(host, "-d") == Result(1, USAGE, "")


def test_illegal_option(host: Host) -> None:
    """getopt(3): ``setkey: illegal option -- q`` on stderr, then usage."""
    assert run(host, "-Dq") == Result(1, USAGE, "setkey: illegal option -- q\n")


def test_missing_option_argument(host: Host) -> None:
    assert run(host, "-f") == Result(1, USAGE, "setkey: option requires an argument -- f\n")


def test_fopen_failure_exits_255(host: Host, tmp_path: Path) -> None:
    """``err(-1, "fopen")``: the option loop stops there, exit status 255."""
    r = run(host, "-f", str(tmp_path / "missing.conf"), "-q")
    assert r == Result(255, "", "setkey: fopen: No such file or directory\n")


def test_only_one_f_or_e(host: Host, tmp_path: Path) -> None:
    conf = tmp_path / "a.conf"
    conf.write_text("flush;\n")
    r = run(host, "-f", str(conf), "-e", "flush;")
    assert r.rc == 255 and r.out == ""
    assert r.err.startswith("setkey: only one -f/-e option is accepted")


def test_empty_e_script_is_fmemopen_einval(host: Host) -> None:
    """FreeBSD sbin/setkey/setkey.c main(), case 'e': ``fmemopen(optarg,
    strlen(optarg), "r")`` and ``err(-1, "fmemopen")`` when it fails;
    lib/libc/stdio/fmemopen.c returns EINVAL for size 0.  So ``-e ""``
    stops in the option loop: the message, exit 255, nothing sent."""
    assert run(host, "-e", "") == Result(255, "", "setkey: fmemopen: Invalid argument\n")
    assert run(host, "-e", "", "-D") == Result(255, "", "setkey: fmemopen: Invalid argument\n")


def test_directory_as_script(host: Host, tmp_path: Path) -> None:
    """fopen(dir) succeeds on FreeBSD; flex's read fails: its fatal message, exit 2."""
    assert run(host, "-f", str(tmp_path)) == Result(2, "", "input in flex scanner failed\n")


def test_no_mode_is_usage_after_pfkey_open(host: Host) -> None:
    assert run(host, "-v") == Result(1, USAGE, "")
    assert run(host, "-a", "-g") == Result(1, USAGE, "")


def test_options_stop_at_the_first_operand(host: Host) -> None:
    """BSD getopt does not permute: ``-D foo -q`` dumps, ``-q`` is an operand."""
    assert run(host, "-D", "foo", "-q") == Result(0, "No SAD entries.\n", "")
    assert run(host, "--", "-D") == Result(1, USAGE, "")


def test_model_long_options_are_checked(host: Host) -> None:
    r = run(host, "-D", "--socket")
    assert r == Result(1, USAGE, "setkey: option --socket requires an argument\n")


def test_unknown_quirk_is_one_line(host: Host) -> None:
    r = run(host, "-D", env={"SETKEY_QUIRKS": "hwif_add,bogus"})
    assert r.rc == 1 and r.out == ""
    assert r.err.startswith("setkey: unknown SETKEY_QUIRKS value(s): bogus")


def test_daemon_socket_missing(tmp_path: Path) -> None:
    """pfkey_open fails: perror("pfkey_open") and exit 1 (with the path)."""
    sock = str(tmp_path / "nobody.sock")
    r = run(None, "--socket", sock, "-D")
    assert r == Result(1, "", f"pfkey_open: {sock}: No such file or directory\n")
    r = run(None, "-D", env={"PFKEY_SOCKET": sock})
    assert r.rc == 1 and "No such file or directory" in r.err


# ---------------------------------------------------------------------------
# -D / -DP golden output
# ---------------------------------------------------------------------------

REF_E1_SCRIPT = """\
add 192.168.1.1 192.168.1.2 esp 0x10001 -m transport -u 100 -r 32
	-E aes-cbc 0x00112233445566778899aabbccddeeff
	-A hmac-sha2-256 0x000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f ;
"""

REF_E1_DUMP = (
    "192.168.1.1 192.168.1.2\n"
    "\tesp mode=transport spi=65537(0x00010001) reqid=100(0x00000064)\n"
    "\tE: aes-cbc  00112233 44556677 8899aabb ccddeeff\n"
    "\tA: hmac-sha2-256  00010203 04050607 08090a0b 0c0d0e0f 10111213 14151617 18191a1b"
    " 1c1d1e1f\n"
    "\tseq=0x00000000 replay=32 flags=0x00000040 state=mature \n"
    "\tcreated: Jan  5 12:00:00 2025\tcurrent: Jan  5 12:00:10 2025\n"
    "\tdiff: 10(s)\thard: 0(s)\tsoft: 0(s)\n"
    "\tlast:                     \thard: 0(s)\tsoft: 0(s)\n"
    "\tcurrent: 0(bytes)\thard: 0(bytes)\tsoft: 0(bytes)\n"
    "\tallocated: 0\thard: 0\tsoft: 0\n"
    "\tsadb_seq=0 pid=4242 refcnt=1\n")


def test_dump_reproduces_reference_e1(host: Host) -> None:
    """Reference §E.1's example: the add, then ``setkey -D`` 10 s later."""
    assert run(host, "-c", stdin=REF_E1_SCRIPT) == Result(0, "", "")
    host.clock.advance(10)  # type: ignore[attr-defined]
    assert run(host, "-D") == Result(0, REF_E1_DUMP, "")


SAD_SCRIPT = """\
add 192.168.1.1 192.168.1.2 esp 0x10001 -m transport -u 100 -r 32
	-E aes-cbc 0x00112233445566778899aabbccddeeff
	-A hmac-sha2-256 0x000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f ;
add -6 2001:db8::1 2001:db8::2 esp 0x2001 -m tunnel -u 7 -r 1024 -f nocyclic-seq -f zero-pad
	-lh 3600 -ls 5 -E aes-gcm-16 0x000102030405060708090a0b0c0d0e0f10111213 ;
add 192.0.2.1 198.51.100.1 esp 0x3001 -m transport -natt 192.0.2.10[4500] 198.51.100.10[4501]
	-E aes-cbc 0x00112233445566778899aabbccddeeff
	-A hmac-sha1 0x0102030405060708090a0b0c0d0e0f1011121314 ;
add 10.1.1.1 10.1.1.2 ipcomp 0x4001 -m tunnel -C deflate ;
add 10.1.1.1 10.1.1.2 ah 0x5001 -A hmac-sha2-512
	0x000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f ;
"""

_LIFE0 = ("\tlast:                     \thard: 0(s)\tsoft: 0(s)\n"
          "\tcurrent: 0(bytes)\thard: 0(bytes)\tsoft: 0(bytes)\n"
          "\tallocated: 0\thard: 0\tsoft: 0\n")
_TIMES = "\tcreated: Jan  5 12:00:00 2025\tcurrent: Jan  5 12:00:10 2025\n"

SAD_DUMP = (
    # a LARVAL SA (GETSPI by another process): mode=any, no keys, flags 0
    "10.9.9.1 10.9.9.2\n"
    "\tesp mode=any spi=30583(0x00007777) reqid=0(0x00000000)\n"
    "\tseq=0x00000000 replay=0 flags=0x00000000 state=larval \n"
    + _TIMES + "\tdiff: 10(s)\thard: 0(s)\tsoft: 0(s)\n" + _LIFE0 +
    "\tsadb_seq=5 pid=4242 refcnt=1\n"
    # AH with a 64-byte key: the hex dump wraps after 32 bytes
    "10.1.1.1 10.1.1.2\n"
    "\tah mode=any spi=20481(0x00005001) reqid=0(0x00000000)\n"
    "\tA: hmac-sha2-512  00010203 04050607 08090a0b 0c0d0e0f 10111213 14151617 18191a1b"
    " 1c1d1e1f\n"
    " 20212223 24252627 28292a2b 2c2d2e2f 30313233 34353637 38393a3b 3c3d3e3f\n"
    "\tseq=0x00000000 replay=0 flags=0x00000040 state=mature \n"
    + _TIMES + "\tdiff: 10(s)\thard: 0(s)\tsoft: 0(s)\n" + _LIFE0 +
    "\tsadb_seq=4 pid=4242 refcnt=1\n"
    # IPComp: "C: deflate " without a newline, seq= continues the line
    "10.1.1.1 10.1.1.2\n"
    "\tipcomp mode=tunnel spi=16385(0x00004001) reqid=0(0x00000000)\n"
    "\tC: deflate \tseq=0x00000000 replay=0 flags=0x00000040 state=mature \n"
    + _TIMES + "\tdiff: 10(s)\thard: 0(s)\tsoft: 0(s)\n" + _LIFE0 +
    "\tsadb_seq=3 pid=4242 refcnt=1\n"
    # NAT-T: esp-udp, [port] after each address, the NAT: OAI/OAR line
    "192.0.2.1[4500] 198.51.100.1[4501]\n"
    "\tesp-udp mode=transport spi=12289(0x00003001) reqid=0(0x00000000)\n"
    "\tNAT: OAI=192.0.2.10 OAR=198.51.100.10\n"
    "\tE: aes-cbc  00112233 44556677 8899aabb ccddeeff\n"
    "\tA: hmac-sha1  01020304 05060708 090a0b0c 0d0e0f10 11121314\n"
    "\tseq=0x00000000 replay=0 flags=0x00000040 state=mature \n"
    + _TIMES + "\tdiff: 10(s)\thard: 0(s)\tsoft: 0(s)\n" + _LIFE0 +
    "\tsadb_seq=2 pid=4242 refcnt=1\n"
    # IPv6 tunnel, AES-GCM (no A: line), SA_REPLAY, flags, soft expiry -> dying
    "2001:db8::1 2001:db8::2\n"
    "\tesp mode=tunnel spi=8193(0x00002001) reqid=7(0x00000007)\n"
    "\tE: aes-gcm-16  00010203 04050607 08090a0b 0c0d0e0f 10111213\n"
    "\tseq=0x00000000 replay=1024 flags=0x00000200 state=dying \n"
    + _TIMES + "\tdiff: 10(s)\thard: 3600(s)\tsoft: 5(s)\n" + _LIFE0 +
    "\tsadb_seq=1 pid=4242 refcnt=1\n"
    # traffic: last:, current bytes, allocations
    "192.168.1.1 192.168.1.2\n"
    "\tesp mode=transport spi=65537(0x00010001) reqid=100(0x00000064)\n"
    "\tE: aes-cbc  00112233 44556677 8899aabb ccddeeff\n"
    "\tA: hmac-sha2-256  00010203 04050607 08090a0b 0c0d0e0f 10111213 14151617 18191a1b"
    " 1c1d1e1f\n"
    "\tseq=0x00000000 replay=32 flags=0x00000040 state=mature \n"
    + _TIMES + "\tdiff: 10(s)\thard: 0(s)\tsoft: 0(s)\n"
    "\tlast: Jan  5 12:00:06 2025\thard: 0(s)\tsoft: 0(s)\n"
    "\tcurrent: 1500(bytes)\thard: 0(bytes)\tsoft: 0(bytes)\n"
    "\tallocated: 2\thard: 0\tsoft: 0\n"
    "\tsadb_seq=0 pid=4242 refcnt=1\n")


def _sad_setup(host: Host) -> None:
    assert run(host, "-c", stdin=SAD_SCRIPT) == Result(0, "", "")
    so = host.socket()
    so.send(getspi_msg(src="10.9.9.1", dst="10.9.9.2", spirange=(0x7777, 0x7777),
                       pid=999).encode())
    so.recv(0)
    host.tick(6)                               # soft addtime 5 s of SPI 0x2001
    sav = host.key.key_getsavbyspi(0x10001)
    assert sav is not None
    host.key.key_sa_recordxfer(sav, 1400)
    host.clock.advance(2)  # type: ignore[attr-defined]
    host.key.key_sa_recordxfer(sav, 100)
    host.clock.advance(2)  # type: ignore[attr-defined]


def test_sadump_golden_every_field(host: Host) -> None:
    """pfkey_sadump through ``setkey -D``: IPv4/IPv6, transport/tunnel/any,
    NAT-T, IPComp, AH, AES-GCM, key wrap, SA_REPLAY, flags, larval/mature/
    dying, lifetimes, traffic counters, sadb_seq countdown (§E.1, §B.2 DUMP order)."""
    _sad_setup(host)
    assert run(host, "-D") == Result(0, SAD_DUMP, "")
    assert run(host, "-aD") == Result(0, SAD_DUMP, "")   # no DEAD SA ever dumped


def test_get_prints_with_request_seq_and_one_more_ref(host: Host) -> None:
    """key_get: the dump format, sadb_seq = the request's (0), refcnt + 1."""
    _sad_setup(host)
    r = run(host, "-e", "get 192.168.1.1 192.168.1.2 esp 0x10001;")
    want = SAD_DUMP[SAD_DUMP.index("192.168.1.1 192.168.1.2\n"):]
    assert r == Result(0, want.replace("refcnt=1", "refcnt=2"), "")


REF_E2_DUMP = (
    "10.0.11.41[21] 10.0.11.33[any] any\n"
    "\tout ipsec\n"
    "\tesp/tunnel/192.168.0.1-192.168.1.2/require\n"
    "\tspid=1 seq=0 pid=4242 scope=global \n"
    "\trefcnt=1\n")


def test_spddump_reproduces_reference_e2(host: Host) -> None:
    r = run(host, "-e", "spdadd 10.0.11.41/32[21] 10.0.11.33/32[any] any "
            "-P out ipsec esp/tunnel/192.168.0.1-192.168.1.2/require ;")
    assert r == Result(0, "", "")
    assert run(host, "-DP") == Result(0, REF_E2_DUMP, "")


SPD_SCRIPT = """\
spdadd 10.0.11.41/32[21] 10.0.11.33/32[any] any
	-P out ipsec esp/tunnel/192.168.0.1-192.168.1.2/require ;
spdadd 10.0.11.33[any] 10.0.11.41[21] tcp
	-P in ipsec esp/tunnel/192.168.1.2-192.168.0.1/use ah/transport//require ;
spdadd -6 2001:db8:1::/64 2001:db8:2::/48 any -P out ipsec esp/transport//unique:5 ;
spdadd -6 2001:db8:2::/48 2001:db8:1::/64 any -P in ipsec esp/transport//unique ;
spdadd ::/0 ::/0 icmp6 135,0 -P in none ;
spdadd 0.0.0.0/0 10.20.0.0/16 udp -P out discard ;
spdadd 10.30.0.1 10.30.0.2 ip4
	-P out ipsec ipcomp/tunnel/10.30.0.1-10.30.0.2/use esp/transport//default ;
"""

SPD_DUMP = (
    "10.0.11.33[any] 10.0.11.41[21] tcp\n"
    "\tin ipsec\n"
    "\tesp/tunnel/192.168.1.2-192.168.0.1/use\n"
    "\tah/transport//require\n"
    "\tspid=2 seq=9 pid=4242 scope=global \n"
    "\trefcnt=1\n"
    "2001:db8:2::/48[any] 2001:db8:1::/64[any] any\n"
    "\tin ipsec\n"
    "\tesp/transport//unique#16385\n"
    "\tspid=4 seq=8 pid=4242 scope=global \n"
    "\trefcnt=1\n"
    "::/0 ::/0 icmp6 135,0\n"
    "\tin none\n"
    "\tspid=5 seq=7 pid=4242 scope=global \n"
    "\trefcnt=1\n"
    "0.0.0.0/0[any] 0.0.0.0/0[any] any\n"
    "\tin ipsec\n"
    "\tesp/tunnel/10.0.34.4-10.0.23.2/unique:100\n"
    "\tspid=8 seq=6 pid=4242 scope=ifnet ifname=ipsec0\n"
    "\trefcnt=1\n"
    "10.0.11.41[21] 10.0.11.33[any] any\n"
    "\tout ipsec\n"
    "\tesp/tunnel/192.168.0.1-192.168.1.2/require\n"
    "\tspid=1 seq=5 pid=4242 scope=global \n"
    "\trefcnt=1\n"
    "2001:db8:1::/64[any] 2001:db8:2::/48[any] any\n"
    "\tout ipsec\n"
    "\tesp/transport//unique:5\n"
    "\tspid=3 seq=4 pid=4242 scope=global \n"
    "\trefcnt=1\n"
    "0.0.0.0/0[any] 10.20.0.0/16[any] udp\n"
    "\tout discard\n"
    "\tspid=6 seq=3 pid=4242 scope=global \n"
    "\trefcnt=1\n"
    "10.30.0.1[any] 10.30.0.2[any] ip4\n"
    "\tout ipsec\n"
    "\tipcomp/tunnel/10.30.0.1-10.30.0.2/use\n"
    "\tesp/transport//default\n"
    "\tspid=7 seq=2 pid=4242 scope=global \n"
    "\trefcnt=1\n"
    "10.40.0.0/16[any] 10.41.0.0/16[any] any\n"
    "\tout ipsec\n"
    "\tesp/transport//require\n"
    "\tcreated: Jan  5 12:00:00 2025  lastused: Jan  5 12:00:00 2025\n"
    "\tlifetime: 3600(s) validtime: 600(s)\n"
    "\tspid=10 seq=1 pid=4242 scope=global \n"
    "\trefcnt=1\n"
    "0.0.0.0/0[any] 0.0.0.0/0[any] any\n"
    "\tout ipsec\n"
    "\tesp/tunnel/10.0.23.2-10.0.34.4/unique:100\n"
    "\tspid=9 seq=0 pid=4242 scope=ifnet ifname=ipsec0\n"
    "\trefcnt=1\n")


def _spd_setup(host: Host) -> None:
    assert run(host, "-c", stdin=SPD_SCRIPT) == Result(0, "", "")
    # if_ipsec(4)'s policies: ifnet scope, priority = the interface index
    host.ifnets.if_attach(Ifnet("ipsec0"))
    any4 = Sockaddr.from_ip("0.0.0.0")
    vti = [secpolicy(spidx=SecPolicyIndex(d, any4, any4, 0, 0, 255), policy=2, priority=1,
                     req=[ipsecrequest(secasindex(Sockaddr.from_ip(a), Sockaddr.from_ip(b),
                                                  50, 2, 100), 3)])
           for d, a, b in ((1, "10.0.34.4", "10.0.23.2"), (2, "10.0.23.2", "10.0.34.4"))]
    assert host.key.key_register_ifnet(vti) == 0
    # a policy with lifetimes (setkey has no syntax for them; an IKE daemon does)
    so = host.socket()
    so.send(spd_msg(src="10.40.0.0", dst="10.41.0.0", prefs=16, prefd=16, pid=777,
                    lifetime=(3600, 600)).encode())
    assert decode(so.recv(0)).errno == 0
    host.clock.advance(10)  # type: ignore[attr-defined]


def test_spdump_golden_every_field(host: Host) -> None:
    """pfkey_spdump + ipsec_dump_policy through ``setkey -DP``: prefixes and
    ports, upper-layer names (tcp, udp, icmp6 t,c, ip4, any), in before out,
    global then ifnet (ifname=), bundles, levels incl. unique:N and auto
    reqid #N, none/discard, lifetime lines (§E.2, §B.2 SPDDUMP order)."""
    _spd_setup(host)
    assert run(host, "-DP") == Result(0, SPD_DUMP, "")


def test_spddump_scope_options(host: Host) -> None:
    """-g / -t OR IPSEC_POLICYSCOPE_GLOBAL (1) / IFNET (2) into SPDDUMP's
    satype; both (3) is refused by the kernel (EINVAL)."""
    _spd_setup(host)
    glob = run(host, "-DPg")
    assert glob.rc == 0 and "scope=ifnet" not in glob.out and glob.out.count("refcnt=") == 8
    ifn = run(host, "-DPt")
    assert ifn.rc == 0 and ifn.out.count("scope=ifnet ifname=ipsec0") == 2
    assert "scope=global" not in ifn.out
    assert run(host, "-DPgt") == Result(0, "Invalid argument.\n", "")


def test_empty_dumps(host: Host) -> None:
    """postproc's ENOENT texts, without a line prefix outside script mode."""
    assert run(host, "-D") == Result(0, "No SAD entries.\n", "")
    assert run(host, "-DP") == Result(0, "No SPD entries.\n", "")
    assert run(host, "-e", "dump;") == Result(0, "The result of line 1: No SAD entries.\n", "")
    assert run(host, "-e", "\nspddump;") == Result(0, "The result of line 2: No SPD entries.\n",
                                                   "")


def test_flush_options(host: Host) -> None:
    """-F: SADB_FLUSH; -FP: SADB_X_SPDFLUSH."""
    _sad_setup(host)
    run(host, "-e", "spdadd 10.0.0.1 10.0.0.2 any -P out none;")
    assert run(host, "-F") == Result(0, "", "")
    assert run(host, "-D") == Result(0, "No SAD entries.\n", "")
    assert run(host, "-DP").out.count("refcnt=") == 1
    assert run(host, "-FP") == Result(0, "", "")
    assert run(host, "-DP") == Result(0, "No SPD entries.\n", "")


@pytest.mark.skipif(not HAVE_OFFLOAD, reason="ipsec_accel.ipsec_offload not present")
def test_offload_lines_golden() -> None:
    """pfkey_sadump's offload lines (freebsd_ipsec_offload.md §11, §12): a NIC
    that installs shows ``hw offl if: mce0``; an SA restricted with -hwif to a
    NIC that refuses still names that interface (accel_ifname); both have the
    sw/hw offl lines after sadb_seq=."""
    import errno as _errno
    from ipsec_accel.ifnet import (
        IFCAP2_IPSEC_OFFLOAD_MASK, IfIpsecAccelMethods, if_setipsec_accel_methods,
    )
    h = Host(clock=FakeClock())
    try:
        for name, code in (("mce0", 0), ("ix0", _errno.EOPNOTSUPP)):
            ifp = Ifnet(name, capabilities2=IFCAP2_IPSEC_OFFLOAD_MASK)
            if_setipsec_accel_methods(ifp, IfIpsecAccelMethods(
                if_sa_newkey=lambda i, sav, spi, code=code: (code, None),
                if_sa_deinstall=lambda i, spi, priv: 0,
                if_spdadd=lambda i, sp, inp: (0, None), if_spddel=lambda i, sp, priv: 0))
            h.ifnets.if_attach(ifp)
            h.ifnets.if_up(ifp)
        key = "0x0102030405060708090a0b0c0d0e0f1011121314"
        r = run(h, "-e", f"add 10.0.0.1 10.0.0.2 esp 0x1001 -m transport -E aes-gcm-16 {key};"
                f"add 10.0.0.1 10.0.0.3 esp 0x1002 -m transport -hwif ix0 -E aes-gcm-16 {key};")
        assert r == Result(0, "", "")
        h.clock.advance(3)  # type: ignore[attr-defined]
        offl = ("\tsw offl use:                     \tsw offl allocated: 0\tsw offl: 0(bytes)\n"
                "\thw offl use:                     \thw offl allocated: 0\thw offl: 0(bytes)\n")
        life = ("\tcreated: Jan  5 12:00:00 2025\tcurrent: Jan  5 12:00:03 2025\n"
                "\tdiff: 3(s)\thard: 0(s)\tsoft: 0(s)\n" + _LIFE0)
        want = (
            "10.0.0.1 10.0.0.3\n"
            "\tesp mode=transport spi=4098(0x00001002) reqid=0(0x00000000)\n"
            "\tE: aes-gcm-16  01020304 05060708 090a0b0c 0d0e0f10 11121314\n"
            "\tseq=0x00000000 replay=0 flags=0x00000040 state=mature \n"
            "\thw offl if: ix0\n" + life + "\tsadb_seq=1 pid=4242 refcnt=1\n" + offl +
            "10.0.0.1 10.0.0.2\n"
            "\tesp mode=transport spi=4097(0x00001001) reqid=0(0x00000000)\n"
            "\tE: aes-gcm-16  01020304 05060708 090a0b0c 0d0e0f10 11121314\n"
            "\tseq=0x00000000 replay=0 flags=0x00000040 state=mature \n"
            "\thw offl if: mce0\n" + life + "\tsadb_seq=0 pid=4242 refcnt=1\n" + offl)
        assert run(h, "-D") == Result(0, want, "")
    finally:
        h.stop()


# ---------------------------------------------------------------------------
# Script mode: errors, statements applied, REGISTER first
# ---------------------------------------------------------------------------

KEY = "0x00112233445566778899aabbccddeeff"


def test_kernel_errors_print_and_setkey_goes_on(host: Host) -> None:
    """postproc: ``The result of line N: <strerror>.``; the exit status stays
    0 and later statements still run (sendkeymsg always returns 0)."""
    script = (f"add 10.0.0.1 10.0.0.2 esp 0x1000 -E aes-cbc {KEY};\n"
              f"add 10.0.0.1 10.0.0.2 esp 0x1000 -E aes-cbc {KEY};\n"
              "delete 10.0.0.1 10.0.0.2 esp 0x9999;\n"
              "get 10.0.0.1 10.0.0.2 esp 0x9999;\n"
              "spddelete 10.0.0.1 10.0.0.2 any -P out;\n"
              "spdadd 10.0.0.1 10.0.0.2 any -P out none;\n"
              "spdadd 10.0.0.1 10.0.0.2 any -P out none;\n"
              f"add 10.0.0.1 10.0.0.2 esp 0x1001 -E aes-cbc {KEY};\n")
    r = run(host, "-c", stdin=script)
    assert r == Result(0, "The result of line 2: File exists.\n"
                          "The result of line 3: No such process.\n"
                          "The result of line 4: No such process.\n"
                          "The result of line 5: Invalid argument.\n"
                          "The result of line 7: File exists.\n", "")
    assert host.key.sa_count() == 2 and host.key.sp_count() == 1


def test_parse_error_keeps_earlier_statements(host: Host) -> None:
    """Statements before a failing one stay applied; the rest never runs."""
    script = (f"add 10.0.0.1 10.0.0.2 esp 0x1000 -E aes-cbc {KEY};\n"
              "spdadd 10.0.0.1 10.0.0.2 any -P out none;\n"
              f"add 10.0.0.1 10.0.0.2 esp 0x1001 -E aes-cbc 0x0011;\n"
              f"add 10.0.0.1 10.0.0.2 esp 0x1002 -E aes-cbc {KEY};\n")
    r = run(host, "-c", stdin=script)
    assert r == Result(1, "line 3: Invalid key length at [0x0011]\n"
                          "parse failed, line 3.\n", "")
    dump = run(host, "-D").out
    assert "spi=4096(0x00001000)" in dump and "0x00001001" not in dump
    assert "0x00001002" not in dump
    assert run(host, "-DP").out.startswith("10.0.0.1[any] 10.0.0.2[any] any\n\tout none\n")


def test_lexical_error_has_no_parse_failed_line(host: Host) -> None:
    """token.l's yyfatal: ``line N: Syntax error at [\\]`` and exit 1."""
    r = run(host, "-e", f"add 10.0.0.1 10.0.0.2 esp 0x1000 -E aes-cbc {KEY};\n"
            "add 10.0.0.1 \\ 10.0.0.2 esp 0x1001 -E aes-cbc 0x00;")
    assert r == Result(1, "line 2: Syntax error at [\\]\n", "")
    assert host.key.sa_count() == 1


def test_obsolete_algorithm_and_warning(host: Host) -> None:
    r = run(host, "-e", 'add 10.0.0.1 10.0.0.2 esp 0x1000 -E blowfish-cbc "12345678";')
    assert r == Result(1, "line 1: syntax error at [blowfish-cbc]\nparse failed, line 1.\n", "")
    r = run(host, "-e", "get 10.0.0.1 10.0.0.2 esp 0x1000 -m transport;")
    assert r == Result(0, "line 1: WARNING: mode is obsolete at [;]\n"
                          "The result of line 1: No such process.\n", "")


def test_policy_error(host: Host) -> None:
    r = run(host, "-e", "spdadd 10.0.0.1 10.0.0.2 any -P out ipsec esp/tunnel//require;")
    assert r == Result(1, "line 1: Invalid address specification at "
                          "[ out ipsec esp/tunnel//require]\nparse failed, line 1.\n", "")


def test_register_is_sent_first_in_script_mode(host: Host) -> None:
    """main(): MODE_SCRIPT calls get_supported() (SADB_REGISTER, satype
    UNSPEC, our pid) before parsing; -D mode does not."""
    spy = host.socket()
    spy.send(struct.pack("<BBBBHHII", 2, SADB.X_PROMISC, 0, 1, 2, 0, 0, 1))
    spy.recv_all()
    run(host, "-e", f"add 10.0.0.1 10.0.0.2 esp 0x1000 -E aes-cbc {KEY};")
    seen = [decode(m[16:]) for m in spy.recv_all() if m[1] == SADB.X_PROMISC and len(m) > 16]
    assert [(m.type, m.satype, m.pid) for m in seen][:2] == [
        (SADB.REGISTER, 0, PID), (SADB.ADD, 3, PID)]
    run(host, "-D")
    seen = [decode(m[16:]) for m in spy.recv_all() if m[1] == SADB.X_PROMISC and len(m) > 16]
    assert [m.type for m in seen] == [SADB.DUMP]


def test_e_and_c_and_f_read_the_same_script(host: Host, tmp_path: Path) -> None:
    text = f"add 10.0.0.1 10.0.0.2 esp 0x1000 -E aes-cbc {KEY};\n"
    conf = tmp_path / "x.conf"
    conf.write_text(text)
    for args, stdin in ((("-f", str(conf)), None), (("-c",), text), (("-e", text), None)):
        assert run(host, *args, stdin=stdin) == Result(0, "", "")
        assert host.key.sa_count() == 1
        assert run(host, "-F").rc == 0


def test_verbose_prints_every_message(host: Host) -> None:
    """-v: kdebug_sadb of the message sent, then of each reply, each followed
    by a blank line (sendkeymsg); REGISTER is sent by libipsec, not shown."""
    r = run(host, "-vD")
    sent = struct.pack("<BBBBHHII", 2, SADB.DUMP, 0, 0, 2, 0, 0, PID)
    reply = struct.pack("<BBBBHHII", 2, SADB.DUMP, 2, 0, 2, 0, 0, PID)   # ENOENT echo
    assert r == Result(0, kdebug_sadb(sent) + "\n" + kdebug_sadb(reply) + "\n"
                       + "No SAD entries.\n", "")
    r = run(host, "-ve", "flush;")
    assert "sadb_msg{ version=2 type=7(REGISTER)" not in r.out
    assert r.out.count("type=9(FLUSH)") == 2


def test_verbose_trailing_quirk(host: Host) -> None:
    """FreeBSD's -v also decodes the bytes after each DUMP reply (stale buffer
    contents; the model's quirk prints a zeroed header there)."""
    run(host, "-c", stdin=REF_E1_SCRIPT)
    plain = run(host, "-vD")
    quirk = run(host, "-vD", env={"SETKEY_QUIRKS": "verbose_trailing"})
    zero = kdebug_sadb(bytes(16)) + "\n"
    assert zero not in plain.out
    assert quirk.out.replace(zero, "", 1) == plain.out


def test_hexdump_of_the_sent_message(host: Host) -> None:
    """-h: ``%08x: `` offsets and ``%02x `` bytes, 16 a line (pid 4242 = 0x1092)."""
    r = run(host, "-hD")
    assert r == Result(0, "00000000: 02 0a 00 00 02 00 00 00 00 00 00 00 92 10 00 00 \n"
                          "No SAD entries.\n", "")


def test_forever_loop_short_format(host: Host) -> None:
    """-l: shortdump_hdr once, then a DUMP and the short lines every second
    (sleep(1)); the loop ends only by a signal (here: the injected sleep)."""
    run(host, "-c", stdin=REF_E1_SCRIPT)
    naps = []

    def sleep(s: float) -> None:
        naps.append(s)
        host.clock.advance(1)  # type: ignore[attr-defined]
        if len(naps) == 2:
            raise KeyboardInterrupt

    r = run(host, "-lD", sleep=sleep)
    assert r.rc == 130 and naps == [1, 1]
    # No soft/hard lifetimes: " ???/???"; the SA's addresses carry proto 255: "#255".
    assert r.out == ("time p   s spi      ltime   src -> dst\n"
                     "0000 esp M 00010001 ???/??? #255 192.168.1.1 -> #255 192.168.1.2\n"
                     "0001 esp M 00010001 ???/??? #255 192.168.1.1 -> #255 192.168.1.2\n")


def test_recv_timeout_when_replies_are_lost(host: Host) -> None:
    """A receive buffer too small for the dump: the kernel drops what does not
    fit, seq 0 never comes, recv times out: ``recv: Resource temporarily
    unavailable`` (SO_RCVTIMEO; EAGAIN) and setkey carries on, exit 0."""
    run(host, "-c", stdin="".join(
        f"add 10.0.0.1 10.0.0.2 esp {0x1000 + i} -E aes-cbc {KEY};\n" for i in range(4)))
    r = run(host, "-D", rcvbuf=400, recv_timeout=0.05)
    assert r.rc == 0 and r.err == "recv: Resource temporarily unavailable\n"
    assert r.out.count("sadb_seq=3 ") == 1 and "sadb_seq=0 " not in r.out


def test_send_failure_is_perror(host: Host, monkeypatch: pytest.MonkeyPatch) -> None:
    """send(2) failing: perror("send") and on to the next statement."""
    import errno as _errno

    from pfkey.errors import Delivery, PfkeyError
    real = host.key.key_parse

    def failing(so: Any, data: bytes) -> int:
        if data[1] == SADB.ADD:
            raise PfkeyError("no mbufs", errno=_errno.ENOBUFS, delivery=Delivery.SEND)
        return real(so, data)

    monkeypatch.setattr(host.key, "key_parse", failing)
    r = run(host, "-e", f"add 10.0.0.1 10.0.0.2 esp 0x1000 -E aes-cbc {KEY}; dump;")
    assert r == Result(0, "The result of line 1: No SAD entries.\n",
                       "send: No buffer space available\n")


# ---------------------------------------------------------------------------
# postproc on replies the kernel never sends (a fake socket)
# ---------------------------------------------------------------------------

class FakeSocket:
    def __init__(self, replies: list[bytes]) -> None:
        self.replies = list(replies)
        self.sent: list[bytes] = []

    def send(self, data: bytes) -> int:
        self.sent.append(bytes(data))
        return len(data)

    def recv(self, timeout: Optional[float] = None) -> bytes:
        if not self.replies:
            raise TimeoutError(60, "timed out")
        return self.replies.pop(0)

    def close(self) -> None:
        pass


def _setkey_on(replies: list[bytes], **flags: Any) -> tuple[setkey.Setkey, io.StringIO,
                                                             io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    kernel = setkey.Kernel(FakeSocket(replies), if_names=None, interfaces={},
                           settle=lambda d: None, now=lambda: 1736078410, close=lambda: None)
    sk = setkey.Setkey(kernel, out, err, pid=PID, tz=timezone.utc, thiszone=0)
    for k, v in flags.items():
        setattr(sk, k, v)
    return sk, out, err


def _dead_dump(seq: int) -> bytes:
    """A DUMP reply for a DEAD SA (key.c never sends one; postproc filters it)."""
    from pfkey.key_testing import add_msg
    m = add_msg(0x4444, mode=1).replace(type=SADB.DUMP, seq=seq, pid=PID)
    raw = bytearray(m.encode())
    raw[16 + 9] = 3                           # sadb_sa_state = DEAD
    return bytes(raw)


def test_postproc_filters_dead_sas_unless_a() -> None:
    sk, out, _ = _setkey_on([_dead_dump(0)])
    sk.sendkeyshort(SADB.DUMP, 0)
    assert out.getvalue() == ""
    sk, out, _ = _setkey_on([_dead_dump(0)], f_all=True)
    sk.sendkeyshort(SADB.DUMP, 0)
    assert "state=dead " in out.getvalue() and "spi=17476(0x00004444)" in out.getvalue()


def test_reads_until_errno_0_and_seq_0() -> None:
    """sendkeymsg's loop: an error reply ends it (postproc < 0); seq != 0
    keeps it reading; a length that lies is ``invalid keymsg length``."""
    sk, out, err = _setkey_on([_dead_dump(1), _dead_dump(0), _dead_dump(0)], f_all=True)
    sk.sendkeyshort(SADB.DUMP, 0)
    assert out.getvalue().count("state=dead") == 2 and sk.so.replies  # type: ignore[attr-defined]
    bad = _dead_dump(0)[:-8]
    sk, out, err = _setkey_on([bad])
    sk.sendkeyshort(SADB.DUMP, 0)
    assert out.getvalue() == "" and err.getvalue() == "setkey: invalid keymsg length\n"


# ---------------------------------------------------------------------------
# The corpus through the command line
# ---------------------------------------------------------------------------

FILES = sorted(p.name for p in CORPUS.glob("*.conf")) if CORPUS.is_dir() else []


def _library_expectation(text: bytes) -> tuple[list[bytes], Optional[SetkeyParseError]]:
    msgs: list[bytes] = []
    try:
        for stmt in SetkeyParser(pid=PID, resolver=Resolver()).parse(text):
            msgs.extend(m.encode() for m in stmt.messages)
    except SetkeyParseError as exc:
        return msgs, exc
    return msgs, None


@pytest.mark.skipif(len(FILES) != 52, reason="shared corpus not available")
@pytest.mark.parametrize("name", FILES)
def test_corpus_through_the_cli(name: str) -> None:
    """Each corpus script through ``setkey -f``: the exit status and the error
    lines FreeBSD prints, and the kernel left exactly as the statements before
    the failure leave a kernel fed directly (compared by -D and -DP)."""
    text = (CORPUS / name).read_bytes()
    msgs, exc = _library_expectation(text)
    a = Host(clock=FakeClock(), offload=False, taskqueue_mode=TqMode.INLINE)
    b = Host(clock=FakeClock(), offload=False, taskqueue_mode=TqMode.INLINE)
    try:
        r = run(a, "-f", str(CORPUS / name))
        if exc is None:
            assert r.rc == 0, r
        else:
            assert r.rc == 1, r
            tail = "".join(line + "\n" for line in exc.lines)
            assert r.out.endswith(tail), (r.out, tail)
        so = b.socket()
        for m in msgs:
            so.send(m)
            so.recv_all()
        for args in (("-D",), ("-DP",)):
            assert run(a, *args) == run(b, *args)
    finally:
        a.stop()
        b.stop()


# ---------------------------------------------------------------------------
# As a program
# ---------------------------------------------------------------------------

def _program(*args: str, env: Optional[dict[str, str]] = None) -> subprocess.CompletedProcess[str]:
    e = dict(os.environ)
    e.update({"TZ": "UTC"})
    e.pop("PFKEY_SOCKET", None)
    e.update(env or {})
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=e, capture_output=True,
                          text=True, timeout=30)


def test_program_usage_and_exit_status() -> None:
    p = _program("tools/setkey.py")
    assert (p.returncode, p.stdout, p.stderr) == (1, USAGE, "")
    p = _program("-m", "tools.setkey", "-q")
    assert (p.returncode, p.stdout, p.stderr) == (1, USAGE, "setkey: illegal option -- q\n")


def test_readme_demo_command() -> None:
    """``python tools/setkey.py -f examples/demo.conf``: exit 0, the SAs and the
    policies the script adds, newest first, in and out policies."""
    p = _program("tools/setkey.py", "-f", "examples/demo.conf")
    assert p.returncode == 0 and p.stderr == ""
    heads = [line for line in p.stdout.splitlines() if not line.startswith("\t")]
    assert heads == [
        "10.0.0.1 10.0.0.3", "2001:db8:ffff::2 2001:db8:ffff::1",
        "2001:db8:ffff::1 2001:db8:ffff::2", "10.0.0.2 10.0.0.1", "10.0.0.1 10.0.0.2",
        "10.0.0.2[any] 10.0.0.1[any] any", "2001:db8:2::/64[any] 2001:db8:1::/64[any] any",
        "10.0.0.1[any] 10.0.0.2[any] any", "2001:db8:1::/64[any] 2001:db8:2::/64[any] any"]
    assert "\tE: aes-gcm-16  01020304 05060708 090a0b0c 0d0e0f10 11121314\n" in p.stdout
    assert "\tdiff: 0(s)\thard: 3600(s)\tsoft: 2880(s)\n" in p.stdout


@pytest.mark.parametrize("name", ["transport_v4_gcm.conf", "tunnel_v6_cbc_sha256.conf",
                                  "hwif.conf"])
def test_examples_apply_cleanly(name: str) -> None:
    r = run(None, "--embedded", "-f", str(ROOT / "examples" / name))
    assert r.rc == 0 and r.err == "" and "The result of line" not in r.out
    assert "No SAD entries" not in r.out and "No SPD entries" not in r.out
