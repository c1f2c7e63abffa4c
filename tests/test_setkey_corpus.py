"""Every setkey script of ../shared/corpus/setkey through the setkey grammar.

Each of the 52 files is either parsed into the PF_KEY messages FreeBSD's
setkey would send (ACCEPTED: one summary per message, plus the kernel-side
key_parse checks of ``pfkey.decode``) or refused with the exact lines
FreeBSD prints (REFUSED: how many statements were applied before, then
``line N: <msg> at [<yytext>]`` and ``parse failed, line N.``), following
token.l / parse.y / libipsec (pfkey_setkey_reference.md §D and the corpus
README's grammar notes).  Where the corpus README's expectation differs from
what FreeBSD's sources give, FreeBSD wins and the test says so (33: FreeBSD's
/etc/protocols has no "ipv4"; 49: 3des-cbc fails before the missing ";").

The environment is fixed: pid 4242, FreeBSD's REGISTER lists, a resolver
with no names and no interfaces (setkey on a FreeBSD box without DNS and
without an "eth0"), so nothing here touches the host's DNS.
"""

from __future__ import annotations


import pytest

from pfkey import Message, decode
from pfkey.pfkeyv2 import SADB, SADB_EXT as E
from pfkey.setkey_netdb import FREEBSD_PROTOCOLS, Resolver
from pfkey.setkey_parse import SetkeyParseError, SetkeyParser, Statement
from shared_corpus import SETKEY_CORPUS as CORPUS

FILES = sorted(p.name for p in CORPUS.glob("*.conf")) if CORPUS.is_dir() else []

pytestmark = pytest.mark.skipif(len(FILES) != 52, reason="shared corpus not available")

PID = 4242
LEVEL = {0: "default", 1: "use", 2: "require", 3: "unique"}
MODE = {0: "any", 1: "transport", 2: "tunnel"}
PROTO = {50: "esp", 51: "ah", 108: "ipcomp"}
POLICY = {0: "discard", 1: "none", 2: "ipsec"}
DIR = {1: "in", 2: "out"}


def run(name: str, **kw: object) -> tuple[list[Statement], SetkeyParseError | None]:
    """Parse one corpus file; return the statements applied and the error."""
    kw.setdefault("resolver", Resolver())
    parser = SetkeyParser(pid=PID, **kw)  # type: ignore[arg-type]
    applied: list[Statement] = []
    try:
        for stmt in parser.parse((CORPUS / name).read_bytes()):
            applied.append(stmt)
    except SetkeyParseError as exc:
        return applied, exc
    return applied, None


def _addr(a) -> str:  # type: ignore[no-untyped-def]
    s = str(a.addr.address)
    if a.addr.port:
        s += f"[{a.addr.port}]"
    return f"{s}/{a.prefixlen}"


def summarize(m: Message) -> str:
    """One line per message: header, then every extension in wire order."""
    out = [SADB(m.type).name, f"satype={m.satype}"]
    for e in m.exts:
        t = e.exttype
        if t == E.SA:
            out.append(f"spi={e.spi:#x} enc={e.encrypt} auth={e.auth} flags={e.flags:#x} "  # type: ignore[union-attr]
                       f"replay={e.replay}")  # type: ignore[union-attr]
        elif t == E.X_SA2:
            out.append(f"mode={MODE[e.mode]} reqid={e.reqid}")  # type: ignore[union-attr]
        elif t == E.KEY_ENCRYPT:
            out.append(f"E={e.key.hex()}")  # type: ignore[union-attr]
        elif t == E.KEY_AUTH:
            out.append(f"A={e.key.hex()}")  # type: ignore[union-attr]
        elif t in (E.ADDRESS_SRC, E.ADDRESS_DST):
            out.append(("src=" if t == E.ADDRESS_SRC else "dst=") + _addr(e)
                       + f" proto={e.proto}")  # type: ignore[union-attr]
        elif t == E.X_POLICY:
            reqs = " ".join(
                f"{PROTO[r.proto]}/{MODE[r.mode]}/"
                + (f"{r.src.address}-{r.dst.address}" if r.src else "")
                + f"/{LEVEL[r.level]}" + (f":{r.reqid}" if r.reqid else "")
                for r in e.requests)  # type: ignore[union-attr]
            out.append(f"policy={DIR[e.dir]} "  # type: ignore[union-attr]
                       f"{POLICY[e.type]}" + (f" {reqs}" if reqs else ""))  # type: ignore[union-attr]
        else:
            out.append(f"ext{int(t)}")
    return " ".join(out)


ACCEPTED: dict[str, list[tuple[int, str]]] = {
    '06_freebsd_samplecf_get_delete_dump_flush.conf': [
        (4, 'GET satype=2 spi=0x10004 enc=0 auth=0 flags=0x40 replay=0 mode=any reqid=0 src=fec0:0:0:1::1/128 proto=255 dst=fec0:0:0:2::2/128 proto=255'),
        (7, 'X_SPDDELETE satype=0 policy=out discard src=fec0:0:0:1::/64 proto=255 dst=fec0:0:0:2::/64 proto=255'),
        (8, 'DELETE satype=2 spi=0x10004 enc=0 auth=0 flags=0x40 replay=0 mode=any reqid=0 src=fec0:0:0:1::1/128 proto=255 dst=fec0:0:0:2::2/128 proto=255'),
        (11, 'DUMP satype=0'),
        (12, 'X_SPDDUMP satype=0'),
        (13, 'DUMP satype=3'),
        (14, 'FLUSH satype=3'),
        (17, 'FLUSH satype=0'),
        (18, 'X_SPDFLUSH satype=0'),
        (21, 'DUMP satype=3'),
        (22, 'FLUSH satype=2'),
    ],
    '09_freebsd_setkey8_icmp6_neighbor_solicitation_none.conf': [
        (2, 'X_SPDADD satype=0 policy=in none src=::[135]/0 proto=58 dst=::/0 proto=58'),
    ],
    '10_freebsd_tunneltest_aes_gcm_128_v4_ipsecA.conf': [
        (6, 'FLUSH satype=0'),
        (7, 'X_SPDFLUSH satype=0'),
        (8, 'X_SPDADD satype=0 policy=out ipsec esp/tunnel/198.51.100.2-198.51.100.6/require src=192.0.2.0/24 proto=255 dst=203.0.113.0/24 proto=255'),
        (9, 'X_SPDADD satype=0 policy=in ipsec esp/tunnel/198.51.100.6-198.51.100.2/require src=203.0.113.0/24 proto=255 dst=192.0.2.0/24 proto=255'),
        (10, 'ADD satype=3 E=3132333435363738393031323334353637383930 spi=0x1000 enc=20 auth=0 flags=0x40 replay=0 mode=any reqid=0 src=198.51.100.2/32 proto=255 dst=198.51.100.6/32 proto=255'),
        (11, 'ADD satype=3 E=3132333435363738393031323334353637383930 spi=0x1001 enc=20 auth=0 flags=0x40 replay=0 mode=any reqid=0 src=198.51.100.6/32 proto=255 dst=198.51.100.2/32 proto=255'),
    ],
    '11_freebsd_tunneltest_aes_gcm_256_v6_ipsecB.conf': [
        (6, 'FLUSH satype=0'),
        (7, 'X_SPDFLUSH satype=0'),
        (8, 'X_SPDADD satype=0 policy=in ipsec esp/tunnel/2001:db8:23::2-2001:db8:34::2/require src=2001:db8:1::/64 proto=255 dst=2001:db8:45::/64 proto=255'),
        (9, 'X_SPDADD satype=0 policy=out ipsec esp/tunnel/2001:db8:34::2-2001:db8:23::2/require src=2001:db8:45::/64 proto=255 dst=2001:db8:1::/64 proto=255'),
        (10, 'ADD satype=3 E=313233343536373839303132333435363738393031323334353637383930313233343536 spi=0x1000 enc=20 auth=0 flags=0x40 replay=0 mode=any reqid=0 src=2001:db8:23::2/128 proto=255 dst=2001:db8:34::2/128 proto=255'),
        (11, 'ADD satype=3 E=313233343536373839303132333435363738393031323334353637383930313233343536 spi=0x1001 enc=20 auth=0 flags=0x40 replay=0 mode=any reqid=0 src=2001:db8:34::2/128 proto=255 dst=2001:db8:23::2/128 proto=255'),
    ],
    '12_freebsd_tunneltest_aes_cbc_128_hmac_sha1_v4_ipsecA.conf': [
        (6, 'FLUSH satype=0'),
        (7, 'X_SPDFLUSH satype=0'),
        (8, 'X_SPDADD satype=0 policy=out ipsec esp/tunnel/198.51.100.2-198.51.100.6/require src=192.0.2.0/24 proto=255 dst=203.0.113.0/24 proto=255'),
        (9, 'X_SPDADD satype=0 policy=in ipsec esp/tunnel/198.51.100.6-198.51.100.2/require src=203.0.113.0/24 proto=255 dst=192.0.2.0/24 proto=255'),
        (10, 'ADD satype=3 E=31323334353637383930313233343536 A=3132333435363738393031323334353637383930 spi=0x1000 enc=12 auth=3 flags=0x40 replay=0 mode=any reqid=0 src=198.51.100.2/32 proto=255 dst=198.51.100.6/32 proto=255'),
        (11, 'ADD satype=3 E=31323334353637383930313233343536 A=3132333435363738393031323334353637383930 spi=0x1001 enc=12 auth=3 flags=0x40 replay=0 mode=any reqid=0 src=198.51.100.6/32 proto=255 dst=198.51.100.2/32 proto=255'),
    ],
    '13_freebsd_tunneltest_aes_cbc_256_hmac_sha2_256_v6_ipsecB.conf': [
        (6, 'FLUSH satype=0'),
        (7, 'X_SPDFLUSH satype=0'),
        (8, 'X_SPDADD satype=0 policy=in ipsec esp/tunnel/2001:db8:23::2-2001:db8:34::2/require src=2001:db8:1::/64 proto=255 dst=2001:db8:45::/64 proto=255'),
        (9, 'X_SPDADD satype=0 policy=out ipsec esp/tunnel/2001:db8:34::2-2001:db8:23::2/require src=2001:db8:45::/64 proto=255 dst=2001:db8:1::/64 proto=255'),
        (10, 'ADD satype=3 E=3132333435363738393031323334353637383930313233343536373839303132 A=3132333435363738393031323334353637383930313233343536373839303132 spi=0x1000 enc=12 auth=5 flags=0x40 replay=0 mode=any reqid=0 src=2001:db8:23::2/128 proto=255 dst=2001:db8:34::2/128 proto=255'),
        (11, 'ADD satype=3 E=3132333435363738393031323334353637383930313233343536373839303132 A=3132333435363738393031323334353637383930313233343536373839303132 spi=0x1001 enc=12 auth=5 flags=0x40 replay=0 mode=any reqid=0 src=2001:db8:34::2/128 proto=255 dst=2001:db8:23::2/128 proto=255'),
    ],
    '14_freebsd_tunneltest_chacha20_poly1305_v4_ipsecB.conf': [
        (6, 'FLUSH satype=0'),
        (7, 'X_SPDFLUSH satype=0'),
        (8, 'X_SPDADD satype=0 policy=in ipsec esp/tunnel/198.51.100.2-198.51.100.6/require src=192.0.2.0/24 proto=255 dst=203.0.113.0/24 proto=255'),
        (9, 'X_SPDADD satype=0 policy=out ipsec esp/tunnel/198.51.100.6-198.51.100.2/require src=203.0.113.0/24 proto=255 dst=192.0.2.0/24 proto=255'),
        (10, 'ADD satype=3 E=313233343536373839303132333435363738393031323334353637383930313233343536 spi=0x1000 enc=15 auth=0 flags=0x40 replay=0 mode=any reqid=0 src=198.51.100.2/32 proto=255 dst=198.51.100.6/32 proto=255'),
        (11, 'ADD satype=3 E=313233343536373839303132333435363738393031323334353637383930313233343536 spi=0x1001 enc=15 auth=0 flags=0x40 replay=0 mode=any reqid=0 src=198.51.100.6/32 proto=255 dst=198.51.100.2/32 proto=255'),
    ],
    '15_freebsd_tunneltest_null_v6_ipsecA.conf': [
        (6, 'FLUSH satype=0'),
        (7, 'X_SPDFLUSH satype=0'),
        (8, 'X_SPDADD satype=0 policy=out ipsec esp/tunnel/2001:db8:23::2-2001:db8:34::2/require src=2001:db8:1::/64 proto=255 dst=2001:db8:45::/64 proto=255'),
        (9, 'X_SPDADD satype=0 policy=in ipsec esp/tunnel/2001:db8:34::2-2001:db8:23::2/require src=2001:db8:45::/64 proto=255 dst=2001:db8:1::/64 proto=255'),
        (10, 'ADD satype=3 E= spi=0x1000 enc=11 auth=0 flags=0x40 replay=0 mode=any reqid=0 src=2001:db8:23::2/128 proto=255 dst=2001:db8:34::2/128 proto=255'),
        (11, 'ADD satype=3 E= spi=0x1001 enc=11 auth=0 flags=0x40 replay=0 mode=any reqid=0 src=2001:db8:34::2/128 proto=255 dst=2001:db8:23::2/128 proto=255'),
    ],
    '17_freebsd_regression_ipsec_t_aes_ctr_sha2_384.conf': [
        (5, 'ADD satype=3 E=3031323334353637383930313233343536373839 A=303132333435363738393031323334353637383930313233343536373839303132333435363738393031323334353637 spi=0x2710 enc=13 auth=6 flags=0x40 replay=0 mode=transport reqid=0 src=127.255.0.1/32 proto=255 dst=127.255.1.1/32 proto=255'),
        (6, 'ADD satype=3 E=3031323334353637383930313233343536373839 A=303132333435363738393031323334353637383930313233343536373839303132333435363738393031323334353637 spi=0x2711 enc=13 auth=6 flags=0x40 replay=0 mode=transport reqid=0 src=127.255.1.1/32 proto=255 dst=127.255.0.1/32 proto=255'),
        (7, 'X_SPDADD satype=0 policy=out ipsec esp/transport//require src=127.255.0.1/32 proto=255 dst=127.255.1.1/32 proto=255'),
        (8, 'X_SPDADD satype=0 policy=in ipsec esp/transport//require src=127.255.1.1/32 proto=255 dst=127.255.0.1/32 proto=255'),
        (9, 'X_SPDADD satype=0 policy=in ipsec esp/transport//require src=127.255.0.1/32 proto=255 dst=127.255.1.1/32 proto=255'),
        (10, 'X_SPDADD satype=0 policy=out ipsec esp/transport//require src=127.255.1.1/32 proto=255 dst=127.255.0.1/32 proto=255'),
    ],
    '18_bsdrp_static_tunnel_aes_gcm_v4v6.conf': [
        (3, 'FLUSH satype=0'),
        (4, 'X_SPDFLUSH satype=0'),
        (5, 'X_SPDADD satype=0 policy=out ipsec esp/tunnel/10.0.23.2-10.0.34.4/require src=10.0.12.0/24 proto=255 dst=10.0.45.0/24 proto=255'),
        (6, 'X_SPDADD satype=0 policy=in ipsec esp/tunnel/10.0.34.4-10.0.23.2/require src=10.0.45.0/24 proto=255 dst=10.0.12.0/24 proto=255'),
        (7, 'ADD satype=3 E=3132333435363738393031323334353637383930 spi=0x1000 enc=20 auth=0 flags=0x40 replay=0 mode=any reqid=0 src=10.0.23.2/32 proto=255 dst=10.0.34.4/32 proto=255'),
        (8, 'ADD satype=3 E=3132333435363738393031323334353637383930 spi=0x1001 enc=20 auth=0 flags=0x40 replay=0 mode=any reqid=0 src=10.0.34.4/32 proto=255 dst=10.0.23.2/32 proto=255'),
        (9, 'X_SPDADD satype=0 policy=out ipsec esp/tunnel/2001:db8:23::2-2001:db8:34::4/require src=2001:db8:12::/64 proto=255 dst=2001:db8:45::/64 proto=255'),
        (10, 'X_SPDADD satype=0 policy=in ipsec esp/tunnel/2001:db8:34::4-2001:db8:23::2/require src=2001:db8:45::/64 proto=255 dst=2001:db8:12::/64 proto=255'),
        (11, 'ADD satype=3 E=3132333435363738393031323334353637383930 spi=0x1002 enc=20 auth=0 flags=0x40 replay=0 mode=any reqid=0 src=2001:db8:23::2/128 proto=255 dst=2001:db8:34::4/128 proto=255'),
        (12, 'ADD satype=3 E=3132333435363738393031323334353637383930 spi=0x1003 enc=20 auth=0 flags=0x40 replay=0 mode=any reqid=0 src=2001:db8:34::4/128 proto=255 dst=2001:db8:23::2/128 proto=255'),
    ],
    '19_bsdrp_if_ipsec_vti_reqid.conf': [
        (4, 'FLUSH satype=0'),
        (5, 'X_SPDFLUSH satype=0'),
        (6, 'ADD satype=3 E=3132333435363738393031323334353637383930 spi=0x1000 enc=20 auth=0 flags=0x40 replay=0 mode=tunnel reqid=100 src=10.0.23.2/32 proto=255 dst=10.0.34.4/32 proto=255'),
        (7, 'ADD satype=3 E=3132333435363738393031323334353637383930 spi=0x1001 enc=20 auth=0 flags=0x40 replay=0 mode=tunnel reqid=100 src=10.0.34.4/32 proto=255 dst=10.0.23.2/32 proto=255'),
    ],
    '20_libreswan_flush_on_startup_aes_gcm_hex.conf': [
        (3, 'FLUSH satype=0'),
        (4, 'X_SPDFLUSH satype=0'),
        (5, 'ADD satype=3 E=3ffe050148193ffe050148193ffe050148193ffe spi=0x2694 enc=20 auth=0 flags=0x40 replay=0 mode=any reqid=0 src=10.1.1.1/32 proto=255 dst=20.1.1.1/32 proto=255'),
        (6, 'ADD satype=3 E=1122334455667788990011223344556677889900 spi=0x2710 enc=20 auth=0 flags=0x40 replay=0 mode=any reqid=0 src=20.1.1.1/32 proto=255 dst=10.1.1.1/32 proto=255'),
        (7, 'X_SPDADD satype=0 policy=out ipsec esp/transport//use src=10.1.1.1/32 proto=255 dst=20.1.1.1/32 proto=255'),
    ],
    '21_libreswan_freebsd_if_ipsec_add_state.conf': [
        (4, 'ADD satype=3 E=34352d2d2d2d2d4b65792d2d2d2d3233 A=34352d2d2d2d2d2d486173682d2d2d2d2d2d3233 spi=0x11ab enc=12 auth=3 flags=0x40 replay=0 mode=tunnel reqid=100 src=198.18.1.12/32 proto=255 dst=198.18.1.15/32 proto=255'),
        (5, 'ADD satype=3 E=32332d2d2d2d2d4b65792d2d2d2d3435 A=32332d2d2d2d2d2d486173682d2d2d2d2d2d3435 spi=0x929 enc=12 auth=3 flags=0x40 replay=0 mode=tunnel reqid=100 src=198.18.1.15/32 proto=255 dst=198.18.1.12/32 proto=255'),
    ],
    '22_netbsd_transport_v4_esp_rijndael.conf': [
        (5, 'ADD satype=3 E=61616161616161616161616161616161 spi=0x2710 enc=12 auth=0 flags=0x40 replay=0 mode=any reqid=0 src=10.0.0.1/32 proto=255 dst=10.0.0.2/32 proto=255'),
        (6, 'ADD satype=3 E=61616161616161616161616161616161 spi=0x2711 enc=12 auth=0 flags=0x40 replay=0 mode=any reqid=0 src=10.0.0.2/32 proto=255 dst=10.0.0.1/32 proto=255'),
        (7, 'X_SPDADD satype=0 policy=out ipsec esp/transport//require src=10.0.0.1/32 proto=255 dst=10.0.0.2/32 proto=255'),
    ],
    '24_netbsd_tunnel_v4_esp_aes_gcm16.conf': [
        (5, 'ADD satype=3 E=6161616161616161616161616161616161616161 spi=0x2710 enc=20 auth=0 flags=0x40 replay=0 mode=any reqid=0 src=20.0.0.1/32 proto=255 dst=20.0.0.2/32 proto=255'),
        (6, 'ADD satype=3 E=6161616161616161616161616161616161616161 spi=0x2711 enc=20 auth=0 flags=0x40 replay=0 mode=any reqid=0 src=20.0.0.2/32 proto=255 dst=20.0.0.1/32 proto=255'),
        (8, 'X_SPDADD satype=0 policy=out ipsec esp/tunnel/20.0.0.1-20.0.0.2/require src=10.0.1.0/24 proto=255 dst=10.0.2.0/24 proto=255'),
        (10, 'X_SPDADD satype=0 policy=in ipsec esp/tunnel/20.0.0.2-20.0.0.1/require src=10.0.2.0/24 proto=255 dst=10.0.1.0/24 proto=255'),
    ],
    '34_netbsd_delete_sa.conf': [
        (5, 'DELETE satype=3 spi=0x2724 enc=0 auth=0 flags=0x40 replay=0 mode=any reqid=0 src=10.0.0.1/32 proto=255 dst=10.0.0.2/32 proto=255'),
        (6, 'DELETE satype=3 spi=0x2725 enc=0 auth=0 flags=0x40 replay=0 mode=any reqid=0 src=10.0.0.2/32 proto=255 dst=10.0.0.1/32 proto=255'),
    ],
    '38_ipsectools_setkey_conf_none.conf': [
        (6, 'X_SPDFLUSH satype=0'),
        (10, 'X_SPDADD satype=0 policy=out none src=127.0.0.0/8 proto=255 dst=127.0.0.0/8 proto=255'),
        (11, 'X_SPDADD satype=0 policy=in none src=127.0.0.0/8 proto=255 dst=127.0.0.0/8 proto=255'),
    ],
    '46_openwrt_l2tp_named_port.conf': [
        (4, 'FLUSH satype=0'),
        (5, 'X_SPDFLUSH satype=0'),
        (7, 'X_SPDADD satype=0 policy=out ipsec esp/transport//require src=203.0.113.10[1701]/32 proto=17 dst=0.0.0.0/0 proto=17'),
        (8, 'X_SPDADD satype=0 policy=in ipsec esp/transport//require src=0.0.0.0/0 proto=17 dst=203.0.113.10[1701]/32 proto=17'),
    ],
    '50_csdn_racoon_natt_spd.conf': [
        (3, 'X_SPDADD satype=0 policy=out ipsec esp/tunnel/192.168.125.14-192.168.125.10/require src=192.168.125.14/32 proto=255 dst=192.168.125.10/32 proto=255'),
        (4, 'X_SPDADD satype=0 policy=in ipsec esp/tunnel/192.168.125.10-192.168.125.14/require src=192.168.125.10/32 proto=255 dst=192.168.125.14/32 proto=255'),
    ],
}

REFUSED: dict[str, tuple[int, list[str]]] = {
    # blowfish-cbc: dropped from token.l's S_ENCALG names (FreeBSD 14), lexes as STRING
    '01_freebsd_samplecf_esp_transport_blowfish.conf': (2, [
        'line 20: syntax error at [blowfish-cbc]',
        'parse failed, line 20.']),
    # keyed-md5: dropped from S_AUTHALG
    '02_freebsd_samplecf_ah_old_tunnel_gw_a.conf': (2, [
        'line 19: syntax error at [keyed-md5]',
        'parse failed, line 19.']),
    # keyed-md5: dropped from S_AUTHALG
    '03_freebsd_samplecf_ah_old_tunnel_gw_b.conf': (2, [
        'line 10: syntax error at [keyed-md5]',
        'parse failed, line 10.']),
    # 3des-cbc: dropped from S_ENCALG
    '04_freebsd_samplecf_esp_tunnel_ah_transport_bundle.conf': (2, [
        'line 23: syntax error at [3des-cbc]',
        'parse failed, line 23.']),
    # cast128-cbc: dropped (rc5-cbc is never reached)
    '05_freebsd_samplecf_nested_esp_cast128_rc5.conf': (2, [
        'line 25: syntax error at [cast128-cbc]',
        'parse failed, line 25.']),
    # -E null is ALG_ENC: a key token is required, ';' is a syntax error
    '07_freebsd_samplecf_algorithm_matrix.conf': (0, [
        'line 5: syntax error at [;]',
        'parse failed, line 5.']),
    # add -6 with host names: no resolver entry -> gai_strerror(EAI_NONAME)
    '08_freebsd_setkey8_examples.conf': (1, [
        'line 8: hostname nor servname provided, or not known at [myhost.example.com]',
        'parse failed, line 8.']),
    # camellia-cbc: dropped from S_ENCALG
    '16_freebsd_regression_ipsec_t_camellia_ripemd160.conf': (0, [
        'line 5: syntax error at [camellia-cbc]',
        'parse failed, line 5.']),
    # hmac-sha512 is NetBSD's spelling (FreeBSD: hmac-sha2-512)
    '23_netbsd_transport_v6_ah_hmac_sha512.conf': (0, [
        'line 5: syntax error at [hmac-sha512]',
        'parse failed, line 5.']),
    # aes-gmac: NetBSD only, not in token.l
    '25_netbsd_tunnel_v6_esp_aes_gmac.conf': (0, [
        'line 5: syntax error at [aes-gmac]',
        'parse failed, line 5.']),
    # -E null without key (see 07)
    '26_netbsd_tunnel_ipcomp_esp_null_bundle.conf': (0, [
        'line 5: syntax error at [;]',
        'parse failed, line 5.']),
    # camellia-cbc: dropped
    '27_netbsd_tunnel_v4_over_v6_camellia.conf': (0, [
        'line 5: syntax error at [camellia-cbc]',
        'parse failed, line 5.']),
    # no 'update' command in parse.y (ipsec-tools only)
    '28_netbsd_lifetime_sa_update.conf': (3, [
        'line 9: syntax error at [update]',
        'parse failed, line 9.']),
    # no 'spdupdate' command (ipsec-tools only); '-A null ;' before it is fine
    '29_netbsd_ah_null_spdupdate.conf': (3, [
        'line 9: syntax error at [spdupdate]',
        'parse failed, line 9.']),
    # 'addr [port]' on SA endpoints: ipsec-tools grammar
    '30_netbsd_natt_esp_udp_local.conf': (2, [
        'line 8: syntax error at [[]',
        'parse failed, line 8.']),
    # 'addr [port]' on SA endpoints: ipsec-tools grammar
    '31_netbsd_natt_esp_udp_remote.conf': (2, [
        'line 8: syntax error at [[]',
        'parse failed, line 8.']),
    # 'addr [any]' on SA endpoints: ipsec-tools grammar
    '32_netbsd_forwarding_sp_sa_ports.conf': (2, [
        'line 8: syntax error at [[]',
        'parse failed, line 8.']),
    # FreeBSD's /etc/protocols has no 'ipv4' (README says valid: NetBSD has it)
    '33_netbsd_spflags_ipv4_upperspec.conf': (0, [
        'line 5: invalid upper layer protocol at [ipv4]',
        'parse failed, line 5.']),
    # -E null without key (see 07)
    '35_netbsd_l2tp_v6_transport_prefix128.conf': (0, [
        'line 5: syntax error at [;]',
        'parse failed, line 5.']),
    # des-cbc: dropped
    '36_ipsectools_sample_policy01_icmp.conf': (4, [
        'line 18: syntax error at [des-cbc]',
        'parse failed, line 18.']),
    # des-cbc: dropped (the unique:N policies before it are fine)
    '37_ipsectools_sample_policy02_unique.conf': (9, [
        'line 42: syntax error at [des-cbc]',
        'parse failed, line 42.']),
    # des-cbc: dropped
    '39_ipsectools_setkey8_examples.conf': (0, [
        'line 4: syntax error at [des-cbc]',
        'parse failed, line 4.']),
    # '[' ends the S_PL policy text; libipsec then misses the '-' of a-b
    '40_ipsectools_setkey8_natt_tunnel_ports.conf': (0, [
        'line 5: Invalid argument at [ out ipsec\n    esp/tunnel/192.168.0.1]',
        'parse failed, line 5.']),
    # '[' ends the S_PL policy text (endpoint ports are ipsec-tools syntax)
    '41_racoon_roadwarrior_phase1_up_spd.conf': (1, [
        'line 10: Invalid argument at [ out ipsec esp/tunnel/192.168.1.50]',
        'parse failed, line 10.']),
    # esp-udp is a STRING, not a protocol
    '42_kopeio_esp_udp_prio_none_aes_ctr.conf': (1, [
        'line 7: syntax error at [esp-udp]',
        'parse failed, line 7.']),
    # 3des-cbc: dropped (the 'prio' policies are never reached)
    '43_6wind_fastpath_prio_2000.conf': (2, [
        'line 8: syntax error at [3des-cbc]',
        'parse failed, line 8.']),
    # hmac-md5: dropped
    '44_itts_ah_esp_transport_md5_3des.conf': (2, [
        'line 10: syntax error at [hmac-md5]',
        'parse failed, line 10.']),
    # '\\' matches token.l's '.' rule: yyfatal, no 'parse failed' line
    '45_joan667_gw1_backslash_continuation.conf': (2, [
        'line 10: Syntax error at [\\]']),
    # fe80::...%eth0: no interface eth0 -> explore_numeric_scope EAI_NONAME
    '47_pastebin_debian_ipv6_linklocal_scope.conf': (2, [
        'line 24: hostname nor servname provided, or not known at [fe80::230:48ff:fed8:820%eth0]',
        'parse failed, line 24.']),
    # hmac-md5: dropped
    '48_ipsec_howto_cn_transport_ah_esp.conf': (2, [
        'line 12: syntax error at [hmac-md5]',
        'parse failed, line 12.']),
    # 3des-cbc fails before the missing ';' is reached (README expects EOF)
    '49_pastebin_volte_pcscf_missing_semicolon.conf': (2, [
        'line 8: syntax error at [3des-cbc]',
        'parse failed, line 8.']),
    # hmac-md5: dropped (the discard/ipsec policies before it are fine)
    '51_l2tp_ah_default_discard.conf': (4, [
        'line 9: syntax error at [hmac-md5]',
        'parse failed, line 9.']),
    # 'priority' is not libipsec policy syntax: EIPSEC_INVAL_ARGUMENT
    '52_racoon_tool_priority_keyword_template.conf': (0, [
        'line 6: Invalid argument at [ out priority 1 none]',
        'parse failed, line 6.']),
}


def test_every_file_is_classified() -> None:
    """The 52 files are split exactly between ACCEPTED and REFUSED."""
    assert sorted([*ACCEPTED, *REFUSED]) == FILES


@pytest.mark.parametrize("name", sorted(ACCEPTED))
def test_accepted(name: str) -> None:
    """Accepted scripts: the messages (parse.y build order, §D.2), the line
    each is sent at, and each passes the kernel's key_parse checks
    (pfkey.decode strict) and round-trips through the codec."""
    applied, error = run(name)
    assert error is None
    got = [(stmt.lineno, summarize(m)) for stmt in applied for m in stmt.messages]
    assert got == ACCEPTED[name]
    for stmt in applied:
        assert not stmt.warnings
        for m in stmt.messages:
            assert (m.seq, m.pid, m.errno) == (0, PID, 0)
            assert decode(m.encode()) == m


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_refused(name: str) -> None:
    """Refused scripts: FreeBSD's output lines, after the statements before
    the failing one were applied (setkey sends each as it is parsed)."""
    applied, error = run(name)
    count, lines = REFUSED[name]
    assert error is not None
    assert (len(applied), error.lines) == (count, lines)
    for stmt in applied:
        for m in stmt.messages:
            decode(m.encode())


def test_08_with_a_resolver_for_the_names() -> None:
    """setkey.8 example 2 with the names resolvable: the 20-byte key of
    hmac-sha2-256 (256-256 bits) fails ipsec_check_keylen, as the corpus
    README suspects."""
    resolver = Resolver({"myhost.example.com": ["2001:db8::1", "192.0.2.1"],
                         "yourhost.example.com": ["2001:db8::2"]})
    applied, error = run("08_freebsd_setkey8_examples.conf", resolver=resolver)
    assert error is not None and len(applied) == 1
    assert error.lines == ["line 9: Invalid key length at [AH SA configuration!]",
                           "parse failed, line 9."]


def test_47_with_an_eth0_interface() -> None:
    """With an interface named eth0 the scoped addresses resolve and the
    legacy hmac-md5 is what fails."""
    applied, error = run("47_pastebin_debian_ipv6_linklocal_scope.conf",
                         resolver=Resolver(interfaces={"eth0": 2}))
    assert error is not None and len(applied) == 2
    assert error.lines == ["line 24: syntax error at [hmac-md5]", "parse failed, line 24."]


def test_49_missing_semicolon_is_an_error_at_eof() -> None:
    """The README's point about file 49: with algorithms FreeBSD knows, the
    unterminated last statement is a syntax error at EOF (empty yytext, the
    line after the last newline)."""
    text = (CORPUS / "49_pastebin_volte_pcscf_missing_semicolon.conf").read_text()
    text = text.replace("3des-cbc 0xd0c1e6cdd58c07f7fe4a671583d60210d0c1e6cdd58c07f7",
                        "aes-cbc 0xd0c1e6cdd58c07f7fe4a671583d60210")
    text = text.replace("hmac-md5 0x320fe4a8ab88a62df406ccb976346602",
                        "hmac-sha1 0x320fe4a8ab88a62df406ccb976346602aabbccdd")
    parser = SetkeyParser(pid=PID, resolver=Resolver())
    applied: list[Statement] = []
    with pytest.raises(SetkeyParseError) as info:
        for stmt in parser.parse(text):
            applied.append(stmt)
    n = text.count("\n") + 1
    assert len(applied) == 2
    assert info.value.lines == [f"line {n}: syntax error at []", f"parse failed, line {n}."]


def test_33_with_a_netbsd_protocols_table() -> None:
    """With NetBSD's /etc/protocols ("ipv4 4 IPv4") file 33 parses: the
    upper-layer protocol 4 in both addresses."""
    table = FREEBSD_PROTOCOLS + ((("ipv4", "IPv4"), 4),)
    applied, error = run("33_netbsd_spflags_ipv4_upperspec.conf", protocols=table)
    assert error is None
    assert [m.src.proto for s in applied for m in s.messages] == [4, 4]  # type: ignore[union-attr]


def test_hwif_quirks_do_not_change_the_corpus() -> None:
    """No corpus file uses -hwif: both quirk flags give the same messages."""
    for name in sorted(ACCEPTED)[:4]:
        plain, _ = run(name)
        quirky, _ = run(name, hwif_add_quirk=True, hwif_spd_quirk=True)
        assert plain == quirky


