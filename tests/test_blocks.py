"""Block strings, the registry, block shapes and FLOP/parameter counts against hand formulas."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from search.blocks import BLOCKS, BlockSpec, create_block, parse_block
from search.blocks.csn import GROUP_WIDTH
from search.blocks.tsm import TemporalShift
from search.errors import BlockSpecError
from search.flops import count_cost

EXAMPLES = ["x3d_k333_e3_se", "x3d_k133_e4_hs", "x3d_k311_e2", "x3d_k533_e3_se_hs", "r2p1d_k333_e3", "csn_k333_e4",
            "tsm_k133_e4", "me_k133_e4", "attn_h4", "attn_h2_e4", "skip"]


@pytest.mark.parametrize("text", EXAMPLES)
def test_block_strings_round_trip(text: str) -> None:
    spec = parse_block(text)
    assert str(spec) == text
    assert parse_block(str(spec)) == spec


ODD = st.sampled_from([1, 3, 5, 7])


@st.composite
def block_specs(draw: st.DrawFn) -> BlockSpec:
    family = draw(st.sampled_from(sorted(BLOCKS)))
    if family == "skip":
        return BlockSpec(family="skip")
    if family == "attn":
        return BlockSpec(family="attn", heads=draw(st.integers(1, 16)), expansion=draw(st.none() | st.integers(1, 8)))
    kt = 1 if BLOCKS[family].frame_only else draw(ODD)
    return BlockSpec(family=family, kernel=(kt, draw(ODD), draw(ODD)), expansion=draw(st.integers(1, 8)),
                     se=draw(st.booleans()), act=draw(st.sampled_from(["silu", "hardswish"])))


@settings(max_examples=150, deadline=None)
@given(block_specs())
def test_any_valid_spec_round_trips(spec: BlockSpec) -> None:
    assert parse_block(str(spec)) == spec


def test_parse_fields_and_canonical_order() -> None:
    spec = parse_block("x3d_hs_se_e4_k133")
    assert spec == BlockSpec(family="x3d", kernel=(1, 3, 3), expansion=4, se=True, act="hardswish")
    assert str(spec) == "x3d_k133_e4_se_hs"


def test_every_family_is_registered() -> None:
    assert set(BLOCKS) == {"x3d", "r2p1d", "csn", "tsm", "me", "attn", "skip"}


@pytest.mark.parametrize(("text", "message"), [
    ("foo_k333", "unknown block family 'foo'"),
    ("x3d_k333", "missing e<N>"),
    ("x3d_k33_e3", "unknown token 'k33'"),
    ("x3d_k343_e3", "odd"),
    ("x3d_k333_e3_e4", "given twice"),
    ("skip_e2", "'skip' takes no e"),
    ("tsm_k333_e4", "2D-only"),
    ("attn_k333_h4", "'attn' takes no k"),
    ("x3d_k333_e12", "expansion must be 1..8"),
    ("", "unknown block family ''"),
])
def test_bad_block_strings(text: str, message: str) -> None:
    with pytest.raises(BlockSpecError, match=message):
        parse_block(text)


def test_unknown_family_lists_families_and_options() -> None:
    with pytest.raises(BlockSpecError) as info:
        parse_block("mbconv_k3")
    for usage in ("x3d_k<t><h><w>_e<N>[_se][_hs]", "attn_h<N>[_e<N>]", "skip", "tsm_", "me_", "csn_", "r2p1d_"):
        assert usage in str(info.value)


@pytest.mark.parametrize(("text", "in_channels", "out_channels", "stride", "message"), [
    ("skip", 8, 16, (1, 1, 1), "identity"),
    ("skip", 8, 8, (1, 2, 2), "identity"),
    ("tsm_k133_e2", 8, 8, (2, 1, 1), "temporal stride"),
    ("attn_h3", 8, 8, (1, 1, 1), "heads"),
    ("x3d_k333_e2", 8, 8, (1, 3, 3), "stride"),
])
def test_bad_shapes(text: str, in_channels: int, out_channels: int, stride: tuple, message: str) -> None:
    with pytest.raises(BlockSpecError, match=message):
        create_block(text, in_channels=in_channels, out_channels=out_channels, stride=stride)


CASES = [(block, 16, out, stride) for block in EXAMPLES if block != "skip"
         for out, stride in ((16, (1, 1, 1)), (24, (1, 2, 2)))] + [("skip", 16, 16, (1, 1, 1)),
                                                                     ("x3d_k333_e2", 16, 16, (2, 2, 2))]


@pytest.mark.parametrize(("block", "in_channels", "out_channels", "stride"), CASES)
def test_output_shapes(block: str, in_channels: int, out_channels: int, stride: tuple) -> None:
    module = create_block(block, in_channels=in_channels, out_channels=out_channels, stride=stride).eval()
    y = module(torch.randn(2, in_channels, 4, 7, 7))
    assert tuple(y.shape) == (2, out_channels, math.ceil(4 / stride[0]), math.ceil(7 / stride[1]), math.ceil(7 / stride[2]))


def test_temporal_shift_moves_channels_one_frame() -> None:
    x = torch.arange(3 * 16, dtype=torch.float32).reshape(1, 3, 16, 1, 1).expand(2, 3, 16, 2, 2).clone()
    y = TemporalShift(16)(x)  # (N, T, C, H, W), fold 2
    assert torch.equal(y[:, 1:, :2], x[:, :-1, :2]) and torch.all(y[:, 0, :2] == 0)
    assert torch.equal(y[:, :-1, 2:4], x[:, 1:, 2:4]) and torch.all(y[:, -1, 2:4] == 0)
    assert torch.equal(y[:, :, 4:], x[:, :, 4:])


def test_skip_is_identity_and_residual_blocks_add_input() -> None:
    x = torch.randn(1, 8, 4, 5, 5)
    assert torch.equal(create_block("skip", in_channels=8, out_channels=8, stride=(1, 1, 1))(x), x)
    block = create_block("x3d_k333_e2", in_channels=8, out_channels=8, stride=(1, 1, 1)).eval()
    torch.nn.init.zeros_(block.project[1].weight)  # zero the last BN: the branch vanishes
    assert torch.allclose(block(x), x)


# ----------------------------------------------------------------------- independent cost counts
def _bn(channels: int) -> int:
    return 2 * channels


def _se_cost(mid: int) -> tuple[int, int]:
    hidden = max(8, mid // 4)
    return 2 * mid * hidden, mid * hidden + hidden + hidden * mid + mid


def hand_count(block: str, c: int, co: int, stride: tuple, shape: tuple) -> tuple[int, int]:
    """(MACs, params) from the block's definition, written out by hand."""
    spec = parse_block(block)
    t, h, w = shape
    to, ho, wo = (math.ceil(size / s) for size, s in zip(shape, stride))
    p_in, p_out = t * h * w, to * ho * wo
    if spec.family == "skip":
        return 0, 0
    if spec.family == "attn":
        ratio = spec.expansion or 2
        macs, params = 0, 0
        if c != co or stride != (1, 1, 1):
            macs, params = c * co * p_out, c * co + _bn(co)
        length = p_out
        macs += length * co * 3 * co + 2 * length * length * co + length * co * co + 2 * length * co * ratio * co
        params += 2 * co + (3 * co * co + 3 * co) + (co * co + co) + 2 * co + (co * ratio * co + ratio * co) + (ratio * co * co + co)
        return macs, params
    kt, kh, kw = spec.kernel
    mid = c * spec.expansion
    macs = c * mid * p_in + mid * co * p_out
    params = c * mid + _bn(mid) + mid * co + _bn(co)
    if spec.family == "x3d":
        macs += mid * kt * kh * kw * p_out
        params += mid * kt * kh * kw + _bn(mid)
    elif spec.family == "r2p1d":
        macs += mid * kh * kw * t * ho * wo + mid * kt * p_out
        params += mid * kh * kw + _bn(mid) + mid * kt + _bn(mid)
    elif spec.family == "csn":
        per_group = math.gcd(mid, GROUP_WIDTH)
        macs += mid * per_group * kt * kh * kw * p_out
        params += mid * per_group * kt * kh * kw + _bn(mid)
    elif spec.family in ("tsm", "me"):
        macs += mid * kh * kw * p_out
        params += mid * kh * kw + _bn(mid)
        if spec.family == "me":
            hidden = max(4, c // 4)
            macs += c * hidden * p_in + hidden * 9 * p_in + hidden * c * t
            params += c * hidden + _bn(hidden) + hidden * 9 + hidden * c + _bn(c)
    if spec.se:
        se_macs, se_params = _se_cost(mid)
        macs += se_macs * (to if spec.family in ("tsm", "me") else 1)  # once per frame (2D) or per clip (3D)
        params += se_params
    return macs, params


COUNT_CASES = [("x3d_k333_e3_se", 24, 48, (1, 2, 2)), ("x3d_k133_e4_hs", 24, 24, (1, 1, 1)),
               ("x3d_k511_e2", 16, 16, (1, 1, 1)), ("r2p1d_k333_e3", 24, 48, (1, 2, 2)),
               ("r2p1d_k333_e2_se", 16, 16, (2, 1, 1)), ("csn_k333_e4", 24, 24, (1, 1, 1)),
               ("csn_k333_e3", 20, 32, (1, 2, 2)), ("tsm_k133_e4", 24, 48, (1, 2, 2)), ("tsm_k133_e2_se", 16, 16, (1, 1, 1)),
               ("me_k133_e4", 24, 24, (1, 1, 1)), ("me_k133_e3", 24, 48, (1, 2, 2)), ("attn_h4", 32, 32, (1, 1, 1)),
               ("attn_h2_e4", 16, 32, (1, 2, 2)), ("skip", 16, 16, (1, 1, 1))]


@pytest.mark.parametrize(("block", "c", "co", "stride"), COUNT_CASES)
def test_flops_and_params_match_hand_formulas(block: str, c: int, co: int, stride: tuple) -> None:
    shape = (4, 9, 9)
    module = create_block(block, in_channels=c, out_channels=co, stride=stride)
    cost = count_cost(module, (1, c, *shape))
    macs, params = hand_count(block, c, co, stride, shape)
    assert cost.macs == macs
    assert cost.flops == 2 * macs
    assert cost.params == params
    out_elems = math.prod((co, *(math.ceil(s / st) for s, st in zip(shape, stride))))
    assert cost.bytes == 4 * (c * math.prod(shape) + out_elems + params)
