"""``vidlat simulate``: a model on a simulated accelerator, node by node.

::

    MODEL.onnx ──onnx_file_workload─────────────────────────────┐
    ARCH.yaml / SPACE:REFERENCE ──resolve_arch──> arch_workload ┴──> Simulator(device) ──> table + total
"""

from __future__ import annotations

from pathlib import Path

import click

from profiler.catalog import resolve_device
from profiler.errors import WorkloadError
from profiler.onnx_file import onnx_file_workload
from profiler.simulators import SimulationReport, Simulator
from profiler.workload import Workload


def format_report(report: SimulationReport, *, show_all: bool = False) -> list[str]:
    """The per-node table (op, status, unit, cycles, ms, bound, utilisation) and the totals."""
    header = ("node", "op", "status", "unit", "cycles", "ms", "bound", "util", "note")
    rows = []
    hidden = 0
    for node in report.nodes:
        row = node.to_dict()
        if not show_all and row["status"] != "unsupported" and not row["cycles"]:
            hidden += 1
            continue
        note = f"fused into {row['fused_into']}" if row["fused_into"] else row["reason"]
        rows.append((
            node.name, node.op_type, row["status"], row["unit"],
            "-" if row["cycles"] is None else f"{row['cycles']:.0f}",
            "-" if node.latency_ms is None else f"{node.latency_ms:.4f}",
            row["bound"] or "-", f"{row['utilisation']:.3f}", note,
        ))
    widths = [min(max(len(str(r[i])) for r in [header, *rows]), 48) for i in range(len(header) - 1)]
    lines = ["  ".join(f"{str(cell)[:48]:<{widths[i]}}" for i, cell in enumerate(row[:-1])) + f"  {row[-1]}".rstrip() for row in [header, *rows]]
    if hidden:
        lines.append(f"({hidden} nodes with no cost hidden: fused activations, reshapes, shape arithmetic; --all shows them)")
    totals = report.totals()
    if report.latency_ms is None:
        first = report.unsupported[0]
        lines.append(f"total: unsupported on {report.device}: node {first.name} ({first.op_type}): {first.cost.reason}")
    else:
        lines.append(
            f"total: {report.latency_ms:.4f} ms on {report.device} ({totals['cycles']:.0f} cycles at {report.clock_mhz:g} MHz, "
            f"{totals['macs'] / 1e6:.1f} M MACs, array utilisation {totals['utilisation']:.3f})"
        )
        for group in ("status_ms", "unit_ms", "bound_ms"):
            parts = ", ".join(f"{key} {value:.4f}" for key, value in sorted(totals[group].items(), key=lambda item: -item[1]))
            lines.append(f"  ms by {group.removesuffix('_ms')}: {parts}")
    return lines


def _arch_workload(arch_text: str) -> Workload:
    from search.space import resolve_arch
    from search.workloads import arch_workload

    return arch_workload(resolve_arch(arch_text), name=Path(arch_text).stem)


@click.command("simulate")
@click.option("--device", "-d", required=True, help="a simulated device (fpga-zcu102-sim, fpga-z7020-sim, npu-systolic32-sim) or its YAML")
@click.option("--all", "show_all", is_flag=True, help="also list nodes that cost nothing (fused, reshapes)")
@click.argument("model")
def simulate(device: str, show_all: bool, model: str) -> None:
    """Simulate MODEL (an .onnx file, an arch .yaml/.json, or SPACE:REFERENCE such as default:x3d-xs)
    on a simulated accelerator."""
    config = resolve_device(device)
    if config.backend != "simulator":
        raise WorkloadError(f"device '{config.name}' has backend '{config.backend}'; vidlat simulate needs a simulator device (vidlat profile measures the others)")
    workload = onnx_file_workload(model) if model.lower().endswith(".onnx") else _arch_workload(model)
    report = Simulator(config).simulate_onnx(workload.onnx, workload.inputs)
    for line in format_report(report, show_all=show_all):
        click.echo(line)
