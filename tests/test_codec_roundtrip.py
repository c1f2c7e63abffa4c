"""Property tests: decode(encode(m)) == m for every extension type and for
mixed messages (pfkeyv2.h layouts; key_align accepts what we emit)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from pfkey import (
    IpsecRequest, Message, SadbAddress, SadbAlg, SadbComb, SadbIdent, SadbKey,
    SadbLifetime, SadbProp, SadbSa, SadbSens, SadbSpirange, SadbSupported,
    SadbXIfHwOffl, SadbXNatTFrag, SadbXNatTPort, SadbXNatTType, SadbXPolicy, SadbXSa2,
    SadbXSaReplay, Sockaddr, decode,
)
from pfkey.extensions import EXT_CLASSES
from pfkey.pfkeyv2 import SADB_EXT

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
u64 = st.integers(0, 2**64 - 1)

v4 = st.builds(Sockaddr.inet, st.binary(min_size=4, max_size=4), u16)
v6 = st.builds(lambda a, p, s, f: Sockaddr.inet6(a, p, s, f),
               st.binary(min_size=16, max_size=16), u16, u32, u32)
other_af = st.builds(lambda fam, data: Sockaddr(fam, 2 + len(data), data),
                     st.sampled_from([1, 18, 27, 99]), st.binary(max_size=40))
sockaddr = st.one_of(v4, v6, other_af)
ip_sockaddr = st.one_of(v4, v6)


def address(types: frozenset[int]) -> st.SearchStrategy[SadbAddress]:
    return st.builds(SadbAddress, st.sampled_from(sorted(types)), sockaddr, u8, u8, u16)


comb = st.builds(SadbComb, u8, u8, u16, u16, u16, u16, u16, u32, u32, u32, u64, u64, u64,
                 u64, u64, u64)
alg = st.builds(SadbAlg, u8, u8, u16, u16, u16)
request = st.one_of(
    st.builds(lambda p, m, lv, r: IpsecRequest(p, m, lv, r), u16, u8, u8, u16),
    st.builds(lambda p, m, lv, r, af: IpsecRequest(p, m, lv, r, af[0], af[1]),
              u16, u8, u8, u16,
              st.one_of(st.tuples(v4, v4), st.tuples(v6, v6), st.tuples(v4, v6))),
)
trailer = st.one_of(st.just(b""), st.builds(lambda n, rest: n.to_bytes(2, "little") + rest,
                                            st.integers(0, 7), st.binary(min_size=6, max_size=6)))

EXT_STRATEGIES: dict[int, st.SearchStrategy] = {
    SADB_EXT.SA: st.builds(SadbSa, u32, u8, u8, u8, u8, u32),
    SADB_EXT.SPIRANGE: st.builds(SadbSpirange, u32, u32, u32),
    SADB_EXT.X_SA2: st.builds(SadbXSa2, u8, u32, u32, u8, u16),
    SADB_EXT.X_NAT_T_TYPE: st.builds(SadbXNatTType, u8, st.binary(min_size=3, max_size=3)),
    SADB_EXT.X_NAT_T_FRAG: st.builds(SadbXNatTFrag, u16, u16),
    SADB_EXT.X_SA_REPLAY: st.builds(SadbXSaReplay, u32),
    SADB_EXT.X_IF_HW_OFFL: st.builds(
        SadbXIfHwOffl, st.text(st.characters(min_codepoint=33, max_codepoint=126),
                               min_size=1, max_size=32), u32),
    SADB_EXT.SENSITIVITY: st.builds(SadbSens, u32, u8, u8, u8, u8, st.binary(max_size=32), u32),
    SADB_EXT.PROPOSAL: st.builds(SadbProp, st.lists(comb, max_size=3).map(tuple), u8,
                                 st.binary(min_size=3, max_size=3),
                                 st.sampled_from([b"", bytes(8), b"\x01" * 16])),
    SADB_EXT.X_POLICY: st.builds(SadbXPolicy, u16, u8, u32, u32, u8,
                                 st.lists(request, max_size=4).map(tuple), trailer),
}
for _t in SadbLifetime.ALLOWED_TYPES:
    EXT_STRATEGIES[_t] = st.builds(SadbLifetime, st.just(_t), u32, u64, u64, u64)
for _t in SadbAddress.ALLOWED_TYPES:
    EXT_STRATEGIES[_t] = address(frozenset({_t}))
for _t in SadbKey.ALLOWED_TYPES:
    EXT_STRATEGIES[_t] = st.builds(lambda t, k: SadbKey(t, k), st.just(_t), st.binary(max_size=300))
for _t in SadbIdent.ALLOWED_TYPES:
    EXT_STRATEGIES[_t] = st.builds(SadbIdent, st.just(_t), st.integers(0, 3),
                                   st.binary(max_size=40), u64, u16)
for _t in SadbSupported.ALLOWED_TYPES:
    EXT_STRATEGIES[_t] = st.builds(SadbSupported, st.just(_t),
                                   st.lists(alg, max_size=8).map(tuple), u32)
for _t in SadbXNatTPort.ALLOWED_TYPES:
    EXT_STRATEGIES[_t] = st.builds(SadbXNatTPort, st.just(_t), u16, u16)


def test_every_extension_type_has_a_strategy() -> None:
    """Round trips cover every extension type key_align accepts."""
    accepted = {t for t in range(32) if EXT_CLASSES[t] is not None}
    assert set(EXT_STRATEGIES) == accepted


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_single_extension_roundtrip(data: st.DataObject) -> None:
    """Every extension type survives encode -> decode unchanged (pfkeyv2.h layouts)."""
    for etype, strategy in sorted(EXT_STRATEGIES.items()):
        e = data.draw(strategy, label=f"ext{etype}")
        m = Message(3, 3, exts=(e,))
        assert decode(m.encode(), strict=False) == m


@st.composite
def mixed_message(draw: st.DrawFn) -> Message:
    types = draw(st.lists(st.sampled_from(sorted(EXT_STRATEGIES)), unique=True, max_size=12))
    exts = tuple(draw(EXT_STRATEGIES[t]) for t in types)
    mtype = draw(st.integers(0, 22).filter(lambda t: t != 11 or not exts))
    return Message(mtype, draw(u8), draw(u32), draw(u32), draw(u8), draw(u16), exts)


@settings(max_examples=300, deadline=None)
@given(mixed_message())
def test_mixed_message_roundtrip(m: Message) -> None:
    """Mixed messages (any order, any header) round-trip through the userland view."""
    wire = m.encode()
    assert len(wire) % 8 == 0 and int.from_bytes(wire[4:6], "little") * 8 == len(wire)
    assert decode(wire, strict=False) == m


@st.composite
def valid_sa_message(draw: st.DrawFn) -> Message:
    """A message key_parse accepts: SA satype, consistent src/dst."""
    fam = draw(st.sampled_from([4, 6]))
    sa = v4 if fam == 4 else v6
    plen = st.integers(0, 32 if fam == 4 else 128)
    proto = draw(u8)
    src = SadbAddress(SADB_EXT.ADDRESS_SRC, draw(sa), draw(plen), proto)
    dst = SadbAddress(SADB_EXT.ADDRESS_DST, draw(sa), draw(plen), proto)
    others = draw(st.lists(st.sampled_from([
        SADB_EXT.SA, SADB_EXT.X_SA2, SADB_EXT.KEY_AUTH, SADB_EXT.KEY_ENCRYPT,
        SADB_EXT.LIFETIME_HARD, SADB_EXT.LIFETIME_SOFT, SADB_EXT.X_SA_REPLAY,
        SADB_EXT.X_IF_HW_OFFL, SADB_EXT.X_NAT_T_TYPE, SADB_EXT.X_NAT_T_SPORT,
        SADB_EXT.X_NAT_T_DPORT]), unique=True))
    exts = [draw(EXT_STRATEGIES[t]) for t in others] + [src, dst]
    exts = draw(st.permutations(exts))
    return Message(draw(st.sampled_from([1, 2, 3, 4, 5])), draw(st.sampled_from([2, 3, 9, 11])),
                   draw(u32), draw(u32), exts=tuple(exts))


@settings(max_examples=200, deadline=None)
@given(valid_sa_message())
def test_valid_messages_pass_key_parse(m: Message) -> None:
    """Well-formed SA messages pass every pre-dispatch check of key_parse and
    come back equal (strict, kernel-side decode)."""
    assert decode(m.encode()) == m
