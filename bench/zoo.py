"""Video models written outside vidlat, with random weights, for the any-model bench and tests.

Two sources: torchvision's video models (3D ResNet, MC3, R(2+1)D, S3D, video Swin, MViT) and Hugging
Face transformers' video transformers (VideoMAE, TimeSformer), built from small configs (no download).

torchvision's video models are pure Python, but ``import torchvision`` loads its compiled operators
(``torchvision._meta_registrations``), which fail with a CPU-only torch build of another flavour. This
loader never runs ``torchvision/__init__.py``: it registers empty package modules for the packages on
the way (``torchvision``, ``torchvision.models``, ...) that point at the installed files, so only the
pure-Python modules the video models need are executed (``pip install 'vidlat[zoo]'``).

::

    zoo_model(name) ──> torch module (random weights, eval mode, no download), input (N, C, T, H, W)
    zoo_onnx(name, (C, T, H, W)) ──> ONNX bytes, one input named "input"
"""

from __future__ import annotations

import importlib
import importlib.machinery
import importlib.util
import sys
import types
from collections.abc import Callable
from pathlib import Path

import torch

_PACKAGES = ("torchvision", "torchvision.models", "torchvision.models.video", "torchvision.ops", "torchvision.transforms")


def _bare_packages() -> None:
    """Package modules for torchvision and the sub-packages the video models import, without their __init__."""
    if "torchvision" in sys.modules:
        return  # set up already, or a working torchvision is imported
    spec = importlib.util.find_spec("torchvision")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("torchvision is not installed: pip install 'vidlat[zoo]'")
    root = Path(list(spec.submodule_search_locations)[0])
    for name in _PACKAGES:
        if name in sys.modules:
            continue
        module = types.ModuleType(name)
        module.__path__ = [str(root.joinpath(*name.split(".")[1:]))]
        module.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)
        module.__spec__.submodule_search_locations = module.__path__
        module._vidlat_bare = True  # type: ignore[attr-defined]
        sys.modules[name] = module
        if "." in name:
            parent, _, child = name.rpartition(".")
            setattr(sys.modules[parent], child, module)
    ops = sys.modules["torchvision.ops"]
    misc = importlib.import_module("torchvision.ops.misc")
    depth = importlib.import_module("torchvision.ops.stochastic_depth")
    for name in ("MLP", "Permute", "Conv3dNormActivation"):
        setattr(ops, name, getattr(misc, name))
    ops.StochasticDepth = depth.StochasticDepth  # type: ignore[attr-defined]
    functional = importlib.import_module("torchvision.transforms.functional")
    sys.modules["torchvision.transforms"].InterpolationMode = functional.InterpolationMode  # type: ignore[attr-defined]


def torchvision_video(name: str) -> Callable[..., torch.nn.Module]:
    """The builder ``torchvision.models.video.<module>.<name>`` (weights=None: random initialisation)."""
    module = {"r3d_18": "resnet", "mc3_18": "resnet", "r2plus1d_18": "resnet", "s3d": "s3d",
              "mvit_v2_s": "mvit", "swin3d_t": "swin_transformer"}[name]
    _bare_packages()
    return getattr(importlib.import_module(f"torchvision.models.video.{module}"), name)


class _ChannelsSecond(torch.nn.Module):
    """A transformers video classifier fed (N, C, T, H, W) like the others (it takes (N, T, C, H, W) pixel values)."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=x.transpose(1, 2)).logits


def _transformers(name: str, frames: int, size: int) -> torch.nn.Module:
    _bare_packages()  # transformers imports torchvision when it is installed
    import transformers

    common = {"image_size": size, "num_frames": frames, "patch_size": 16, "hidden_size": 192, "num_hidden_layers": 4,
              "num_attention_heads": 3, "intermediate_size": 768, "num_labels": 10}
    if name == "videomae":
        model = transformers.VideoMAEForVideoClassification(transformers.VideoMAEConfig(tubelet_size=2, **common))
    else:
        model = transformers.TimesformerForVideoClassification(transformers.TimesformerConfig(**common))
    return _ChannelsSecond(model)


TORCHVISION = ("r3d_18", "mc3_18", "r2plus1d_18", "s3d", "swin3d_t", "mvit_v2_s")
TRANSFORMERS = ("videomae", "timesformer")


def zoo_model(name: str, input_shape: tuple[int, int, int, int], *, seed: int = 0) -> torch.nn.Module:
    """A zoo model with random weights (seeded) in eval mode, for inputs of (C, T, H, W)."""
    torch.manual_seed(seed)
    if name in TORCHVISION:
        return torchvision_video(name)(num_classes=10).eval()
    if name in TRANSFORMERS:  # position embeddings are sized for the input
        return _transformers(name, input_shape[1], input_shape[2]).eval()
    raise ValueError(f"unknown zoo model '{name}'; models: {', '.join(TORCHVISION + TRANSFORMERS)}")


def zoo_onnx(name: str, input_shape: tuple[int, int, int, int]) -> bytes:
    """ONNX bytes of a zoo model at batch 1 (vidlat's exporter: one float input named ``input``)."""
    from search.export import module_to_onnx

    return module_to_onnx(zoo_model(name, input_shape), input_shape)


if __name__ == "__main__":
    for arch in TORCHVISION + TRANSFORMERS:
        net = zoo_model(arch, (3, 8, 64, 64))
        print(arch, sum(p.numel() for p in net.parameters()))
