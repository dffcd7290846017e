"""Supernet: latency term gradient, soft and hard (one candidate runs) mixing, derived arch."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from search.arch import create_head
from search.blocks import create_block
from search.supernet import MixedLayer, Supernet

CANDIDATES = ["x3d_k133_e2", "tsm_k133_e2", "skip"]
LATENCIES = [[3.0, 2.0, 0.1], [5.0, 1.0, 0.2]]


class Counting(nn.Module):
    """Wraps a block and counts its forward calls."""

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.block, self.calls = block, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.block(x)


def tiny_supernet(fixed_ms: float = 1.5) -> Supernet:
    torch.manual_seed(0)
    layers = [
        MixedLayer(
            [Counting(create_block(name, in_channels=8, out_channels=8, stride=(1, 1, 1))) for name in CANDIDATES],
            latencies, CANDIDATES,
        )
        for latencies in LATENCIES
    ]
    stem = nn.Conv3d(1, 8, 3, padding=1)
    return Supernet(stem=stem, layers=layers, head=create_head(in_channels=8, hidden_channels=16, num_classes=4), fixed_ms=fixed_ms)


def test_expected_latency_is_softmax_dot_table_plus_fixed():
    net = tiny_supernet()
    assert float(net.expected_latency().detach()) == pytest.approx(sum(sum(row) / 3 for row in LATENCIES) + 1.5)
    with torch.no_grad():
        net.layers[0].logits.copy_(torch.tensor([0.0, 2.0, 0.0]))
    probs = torch.softmax(torch.tensor([0.0, 2.0, 0.0]), 0)
    assert float(net.layers[0].expected_latency().detach()) == pytest.approx(float(probs @ torch.tensor(LATENCIES[0])))


def test_latency_gradient_reaches_the_logits_and_pushes_to_fast_candidates():
    net = tiny_supernet()
    net.expected_latency().backward()
    for layer, latencies in zip(net.layers, LATENCIES):
        grad = layer.logits.grad
        assert grad is not None and torch.all(grad != 0)
        assert int(grad.argmax()) == latencies.index(max(latencies))  # descent lowers the slowest candidate
    assert all(p.grad is None for p in net.weight_parameters())  # the latency term does not touch weights


def test_soft_mode_runs_every_candidate_and_trains_logits_through_ce():
    net = tiny_supernet()
    logits, latency = net(torch.randn(2, 1, 4, 8, 8), temperature=5.0, mode="soft")
    assert logits.shape == (2, 4) and latency.ndim == 0
    assert all(op.calls == 1 for layer in net.layers for op in layer.candidates)
    logits.sum().backward()
    assert all(layer.logits.grad is not None and torch.any(layer.logits.grad != 0) for layer in net.layers)


def test_hard_mode_runs_exactly_one_candidate_per_layer_with_straight_through_gradient():
    net = tiny_supernet()
    for _ in range(5):
        logits, _ = net(torch.randn(2, 1, 4, 8, 8), temperature=1.0, mode="hard")
    assert all(sum(op.calls for op in layer.candidates) == 5 for layer in net.layers)
    net.zero_grad()
    logits, _ = net(torch.randn(2, 1, 4, 8, 8), temperature=1.0, mode="hard")
    logits.pow(2).sum().backward()
    assert all(torch.count_nonzero(layer.logits.grad) >= 2 for layer in net.layers)  # reaches all logits


def test_eval_runs_the_derived_candidates_and_derived_latency_matches_table():
    net = tiny_supernet()
    with torch.no_grad():
        net.layers[0].logits.copy_(torch.tensor([0.0, 0.0, 3.0]))
        net.layers[1].logits.copy_(torch.tensor([4.0, 0.0, 0.0]))
    assert net.derived() == ["skip", "x3d_k133_e2"]
    assert net.derived_latency_ms() == pytest.approx(0.1 + 5.0 + 1.5)
    net.eval()
    net(torch.randn(1, 1, 4, 8, 8))
    assert [[op.calls for op in layer.candidates] for layer in net.layers] == [[0, 0, 1], [1, 0, 0]]
    assert len(net.arch_parameters()) == 2
    assert len(net.weight_parameters()) == len(list(net.parameters())) - 2


def test_eval_with_sample_draws_candidates_from_the_probabilities():
    net = tiny_supernet()
    with torch.no_grad():
        net.layers[0].logits.copy_(torch.tensor([0.0, 0.0, 30.0]))  # all but certain: skip
        net.layers[1].logits.copy_(torch.tensor([0.0, 0.0, -30.0]))  # never skip, the other two 50/50
    net.eval()
    torch.manual_seed(1)
    with torch.no_grad():
        for _ in range(40):
            net(torch.randn(1, 1, 4, 8, 8), sample=True)
    assert [op.calls for op in net.layers[0].candidates] == [0, 0, 40]
    first, second, skip = (op.calls for op in net.layers[1].candidates)
    assert skip == 0 and first + second == 40 and min(first, second) >= 8  # not the argmax (candidate 0) every time


def test_mismatched_latencies_are_rejected():
    with pytest.raises(ValueError, match="latencies"):
        MixedLayer([nn.Identity()], [1.0, 2.0], ["skip"])
    with pytest.raises(ValueError, match="mode"):
        tiny_supernet()(torch.randn(1, 1, 4, 8, 8), mode="medium")


def test_a_fixed_path_runs_only_its_candidates_in_train_and_eval_mode():
    net = tiny_supernet()
    x = torch.randn(2, 1, 4, 8, 8)
    for training in (True, False):
        net.train(training)
        for layer in net.layers:
            for op in layer.candidates:
                op.calls = 0
        logits, _ = net(x, path=[2, 0], mode="hard")
        assert logits.shape == (2, 4)
        assert [[op.calls for op in layer.candidates] for layer in net.layers] == [[0, 0, 1], [1, 0, 0]]
    assert net.path_of(["skip", "x3d_k133_e2"]) == [2, 0]
    assert net.path_latency_ms([2, 0]) == pytest.approx(1.5 + 0.1 + 5.0)
    with pytest.raises(ValueError, match="2 layers"):
        net(x, path=[0])


@pytest.mark.parametrize("layer_index", [0, 5])
def test_a_shared_candidate_equals_the_same_block_built_alone_with_its_slice_of_the_weights(layer_index):
    from search.sharing import SlicedConv, candidate_state_dict
    from search.space import load_space
    from search.supernet import create_supernet

    space = load_space("default")
    torch.manual_seed(0)
    net = create_supernet(space, latency_table=[[1.0] * len(s.candidates) for s in space.layers], fixed_ms=0.0)
    slot, layer = space.layers[layer_index], net.layers[layer_index]
    assert set(layer.bank.weights) == {"expand", "depthwise", "project"}
    x = torch.randn(2, slot.in_channels, 4, 8, 8)
    shared = 0
    for name, candidate in zip(slot.candidates, layer.candidates):
        alone = create_block(name, in_channels=slot.in_channels, out_channels=slot.out_channels, stride=slot.stride)
        alone.load_state_dict(candidate_state_dict(candidate))  # strict: the same keys and shapes
        with torch.no_grad():
            torch.testing.assert_close(candidate.eval()(x), alone.eval()(x), rtol=0, atol=1e-6)
        shared += any(isinstance(m, SlicedConv) for m in candidate.modules())
    assert shared == sum(not name.startswith(("attn", "skip")) for name in slot.candidates)


def test_training_one_candidate_moves_the_weights_the_others_use():
    from search.sharing import candidate_state_dict

    layer = MixedLayer(
        [create_block(name, in_channels=8, out_channels=8, stride=(1, 1, 1)) for name in ("x3d_k333_e4", "x3d_k133_e2", "tsm_k133_e2")],
        [1.0, 1.0, 1.0], ["x3d_k333_e4", "x3d_k133_e2", "tsm_k133_e2"], share_weights=True,
    )
    assert layer.bank.weights["depthwise"].shape == (32, 1, 3, 3, 3)
    before = candidate_state_dict(layer.candidates[2])
    layer(torch.randn(2, 8, 4, 6, 6), temperature=1.0, mode="hard", index=0).square().mean().backward()
    for p in layer.parameters():
        if p.grad is not None:
            p.data -= 0.1 * p.grad
    after = candidate_state_dict(layer.candidates[2])
    assert not torch.equal(before["depthwise.0.weight"], after["depthwise.0.weight"])  # tsm's 2D kernel is x3d's centre
    assert not torch.equal(before["expand.0.0.weight"], after["expand.0.0.weight"])
    assert torch.equal(before["depthwise.1.weight"], after["depthwise.1.weight"])  # batch norms stay private
