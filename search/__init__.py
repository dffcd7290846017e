"""Search: block library, arch specs, search spaces, workloads and ONNX export.

::

    search.blocks   parse_block / create_block     block strings -> nn.Module
    search.arch     ArchSpec / load_arch / build_model
    search.space    load_space -> SearchSpace (layers, workloads, sample, reference archs)
    search.export   module_to_onnx / export_arch   (cached, verified ONNX)
"""

from search.arch import ArchSpec, build_model, load_arch
from search.blocks import BlockSpec, create_block, parse_block
from search.errors import ArchSpecError, BlockSpecError, ExportError, SearchSpaceError
from search.export import ExportReport, export_arch, module_to_onnx
from search.space import LayerSlot, LayerWorkload, SearchSpace, load_space

__all__ = ["ArchSpec", "ArchSpecError", "BlockSpec", "BlockSpecError", "ExportError", "ExportReport", "LayerSlot",
           "LayerWorkload", "SearchSpace", "SearchSpaceError", "build_model", "create_block", "export_arch", "load_arch",
           "load_space", "module_to_onnx", "parse_block"]
