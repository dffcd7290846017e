"""Video models written outside vidlat, with random weights, for the any-model bench and tests.

torchvision's video models are pure Python, but ``import torchvision`` loads its compiled operators
(``torchvision._meta_registrations``), which fail with a CPU-only torch build of another flavour. This
loader never runs ``torchvision/__init__.py``: it registers empty package modules for the packages on
the way (``torchvision``, ``torchvision.models``, ...) that point at the installed files, so only the
pure-Python modules the video models need are executed (``pip install 'vidlat[zoo]'``).

::

    ZOO["r3d_18"](num_classes) ──> torch module (random weights, eval mode, no download)
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


if __name__ == "__main__":
    for arch in ("r3d_18", "mc3_18", "r2plus1d_18", "s3d", "swin3d_t", "mvit_v2_s"):
        net = torchvision_video(arch)(num_classes=10).eval()
        print(arch, sum(p.numel() for p in net.parameters()))
