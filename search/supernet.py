"""The FBNet supernet: every searchable layer holds all its candidates and architecture logits.

::

    x --stem--> [MixedLayer 0] --> ... --> [MixedLayer L-1] --head--> class logits
                     |                            |
      theta_0 --gumbel-softmax(tau)--> m_0   theta_L-1 --> m_L-1     (mixing weights per layer)
      softmax(theta_l) . latency_l  ----------sum + fixed_ms------>  expected latency (ms)

Two ways to mix a layer's candidates with the Gumbel-softmax sample ``m``:

- ``soft`` (FBNet): ``sum_i m_i * op_i(x)``, every candidate runs;
- ``hard`` (GDAS): ``m`` is one-hot in the forward pass with straight-through gradients to all logits,
  only the sampled candidate runs: ``m_k * op_k(x)``.

The expected latency is differentiable in the logits, so the latency term of the loss reaches
them directly; it does not depend on the data.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

import torch
import torch.nn as nn
import torch.nn.functional as F

from search.config import MODES
from search.sharing import share_weights as share_weights_of

if TYPE_CHECKING:
    from search.space import SearchSpace

Mode = Literal["soft", "hard"]


class MixedLayer(nn.Module):
    """One searchable layer: its candidate blocks, their latencies (ms) and the logits over them.

    With ``share_weights`` the candidates' expand, depthwise and project convolutions become slices
    of one ``search.sharing.WeightBank`` (``self.bank``); see that module.
    """

    def __init__(
        self, candidates: Sequence[nn.Module], latencies_ms: Sequence[float], names: Sequence[str], *,
        share_weights: bool = False,
    ) -> None:
        super().__init__()
        if not len(candidates) == len(latencies_ms) == len(names) or not candidates:
            raise ValueError("a mixed layer needs as many latencies and names as candidates (at least one)")
        self.names = list(names)
        self.candidates = nn.ModuleList(candidates)
        self.bank = share_weights_of(self.candidates) if share_weights else None
        self.logits = nn.Parameter(torch.zeros(len(candidates)))
        self.register_buffer("latencies_ms", torch.tensor(list(latencies_ms), dtype=torch.float32))

    def forward(
        self, x: torch.Tensor, *, temperature: float, mode: Mode, sample: bool = False, index: int | None = None
    ) -> torch.Tensor:
        if index is not None:  # a fixed path: only that candidate runs, with no mixing weight
            return self.candidates[index](x)
        if not self.training:  # evaluation: the derived (argmax) candidate, or one drawn from softmax(logits)
            index = int(torch.multinomial(self.probabilities().detach(), 1)) if sample else int(self.logits.argmax())
            return self.candidates[index](x)
        if mode == "hard":
            mask = F.gumbel_softmax(self.logits, tau=temperature, hard=True)
            chosen = int(mask.argmax())
            return mask[chosen] * self.candidates[chosen](x)
        mask = F.gumbel_softmax(self.logits, tau=temperature, hard=False)
        return sum(weight * op(x) for weight, op in zip(mask, self.candidates))

    def probabilities(self) -> torch.Tensor:
        """softmax(logits): the probability of each candidate."""
        return F.softmax(self.logits, dim=0)

    def expected_latency(self) -> torch.Tensor:
        """softmax(logits) . latencies (ms), differentiable in the logits."""
        return (self.probabilities() * self.latencies_ms).sum()


class Supernet(nn.Module):
    """Stem, mixed layers and head; ``forward`` gives (class logits, expected latency in ms).

    ``anchor`` is the path the sandwich schedule trains at every weight step (default: the slowest
    candidate of every layer, Once-for-All's largest network).
    """

    def __init__(self, *, stem: nn.Module, layers: Sequence[MixedLayer], head: nn.Module, fixed_ms: float,
                 anchor: Sequence[int] | None = None) -> None:
        super().__init__()
        self.stem = stem
        self.layers = nn.ModuleList(layers)
        self.head = head
        self.fixed_ms = float(fixed_ms)
        self.anchor = list(anchor) if anchor is not None else [int(layer.latencies_ms.argmax()) for layer in self.layers]
        if len(self.anchor) != len(self.layers):
            raise ValueError(f"anchor has {len(self.anchor)} indices for {len(self.layers)} layers")

    def forward(
        self, x: torch.Tensor, *, temperature: float = 1.0, mode: Mode = "soft", sample: bool = False,
        path: Sequence[int] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """In eval mode ``sample=True`` draws one candidate per layer from softmax(logits) (per call)
        instead of running the argmax: the accuracy of the architecture distribution, not of one arch.
        ``path`` (one candidate index per layer) runs that single architecture, in train or eval mode."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got '{mode}'")
        if path is not None and len(path) != len(self.layers):
            raise ValueError(f"path has {len(path)} indices for {len(self.layers)} layers")
        x = self.stem(x)
        for number, layer in enumerate(self.layers):
            x = layer(x, temperature=temperature, mode=mode, sample=sample, index=None if path is None else path[number])
        return self.head(x), self.expected_latency()

    def expected_latency(self) -> torch.Tensor:
        """Sum of the layers' expected latencies plus the fixed part (stem and head), in ms."""
        return torch.stack([layer.expected_latency() for layer in self.layers]).sum() + self.fixed_ms

    def arch_parameters(self) -> list[nn.Parameter]:
        """The architecture logits, one vector per layer."""
        return [layer.logits for layer in self.layers]

    def weight_parameters(self) -> list[nn.Parameter]:
        """Every parameter that is not an architecture logit."""
        arch = {id(p) for p in self.arch_parameters()}
        return [p for p in self.parameters() if id(p) not in arch]

    def probabilities(self) -> list[list[float]]:
        """Per layer, the probability of each candidate."""
        return [layer.probabilities().detach().tolist() for layer in self.layers]

    def derived(self) -> list[str]:
        """The most probable candidate of every layer (argmax of the logits)."""
        return [layer.names[int(layer.logits.argmax())] for layer in self.layers]

    def path_of(self, blocks: Sequence[str]) -> list[int]:
        """Candidate indices of an architecture given as one block string per layer."""
        if len(blocks) != len(self.layers):
            raise ValueError(f"{len(blocks)} blocks for {len(self.layers)} layers")
        return [layer.names.index(block) for layer, block in zip(self.layers, blocks)]

    def path_latency_ms(self, path: Sequence[int]) -> float:
        """Table latency of the architecture ``path`` (sum of its candidates plus the fixed part)."""
        return self.fixed_ms + sum(float(layer.latencies_ms[index]) for layer, index in zip(self.layers, path))

    def derived_latency_ms(self) -> float:
        """Table latency of the derived architecture (sum of argmax candidates plus fixed part)."""
        return self.fixed_ms + sum(float(layer.latencies_ms[int(layer.logits.argmax())]) for layer in self.layers)


def create_supernet(
    space: SearchSpace, *, latency_table: Sequence[Sequence[float]], fixed_ms: float, num_classes: int | None = None,
    share_weights: bool = True,
) -> Supernet:
    """The supernet of a ``search.space.SearchSpace`` with the latency of every (layer, candidate).

    ``latency_table[l][i]`` is the latency in ms of ``space.layers[l].candidates[i]``; ``fixed_ms`` is
    stem plus head. Stem and head are built as ``search.arch.build_model`` builds them; the head has
    ``num_classes`` outputs (default: the space's). ``share_weights``: the candidates of a layer share
    their convolutions (``search.sharing``); otherwise each has its own. The anchor path is the space's
    first reference arch (X3D-XS in the default space), or the slowest candidates when it has none.
    """
    from search.arch import create_head, create_stem
    from search.blocks import create_block

    if len(latency_table) != len(space.layers):
        raise ValueError(f"latency table has {len(latency_table)} layers, the space has {len(space.layers)}")
    layers = []
    for slot, latencies in zip(space.layers, latency_table):
        if len(latencies) != len(slot.candidates):
            raise ValueError(f"layer {slot.index}: {len(latencies)} latencies for {len(slot.candidates)} candidates")
        blocks = [
            create_block(name, in_channels=slot.in_channels, out_channels=slot.out_channels, stride=tuple(slot.stride))
            for name in slot.candidates
        ]
        layers.append(MixedLayer(blocks, [float(v) for v in latencies], slot.candidates, share_weights=share_weights))
    stem = create_stem(
        in_channels=space.input_shape[0],
        out_channels=space.stem["channels"],
        temporal_kernel=space.stem.get("temporal_kernel", 5),
    )
    head = create_head(
        in_channels=space.layers[-1].out_channels,
        hidden_channels=space.head["channels"],
        num_classes=num_classes or space.num_classes,
    )
    references = list(space.reference_archs().values())
    anchor = [slot.candidates.index(block) for slot, block in zip(space.layers, references[0].layers)] if references else None
    return Supernet(stem=stem, layers=layers, head=head, fixed_ms=fixed_ms, anchor=anchor)


__all__ = ["MODES", "MixedLayer", "Supernet", "create_supernet"]
