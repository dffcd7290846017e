"""Bench: profile a space twice in one run and compare the two lookup tables.

    .venv/bin/python bench/profile_repeatability.py --space tiny --device ort-cpu-1t

Both passes use the device's own policy and a fresh store each; the second pass walks the
workloads in reverse order so that drift of the machine does not line up with the key order.
Prints the median relative difference of the two tables' medians (target < 3%) and the share of
workloads whose two medians differ by more than 5%; the same for p10 wall time and median CPU
time, which a loaded machine disturbs less.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from profiler.backends import create_backend
from profiler.catalog import resolve_device
from profiler.store import LatencyStore
from profiler.sweep import profile_workloads


def one_pass(device, workloads, folder: Path, name: str):
    backend = create_backend(device)
    with LatencyStore(folder / f"{name}.sqlite") as store:
        summary = profile_workloads(backend, store, workloads, progress=False)
        table = store.table(device.name).set_index("key")
    return table, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="tiny")
    parser.add_argument("--device", default="ort-cpu-1t")
    args = parser.parse_args()

    from search.space import load_space

    space = load_space(args.space)
    workloads = list({w.key: w for w in [item.workload for item in space.workloads()] + list(space.fixed_workloads())}.values())
    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory() as folder:
        first, first_summary = one_pass(device, workloads, Path(folder), "first")
        second, second_summary = one_pass(device, workloads[::-1], Path(folder), "second")
    ok = first.index[(first["status"] == "ok")].intersection(second.index[second["status"] == "ok"])

    def relative_difference(column: str):
        a = first.loc[ok, column].astype(float)
        b = second.loc[ok, column].astype(float)
        return (a - b).abs() / ((a + b) / 2)

    a = first.loc[ok, "median_ms"].astype(float)
    rel = relative_difference("median_ms")
    rel_p10 = relative_difference("p10_ms")
    rel_cpu = relative_difference("cpu_ms")
    print(f"space {args.space} on {device.name}: {len(ok)} workloads measured in both passes")
    print(f"{'quantity':<48} {'value':>10}")
    rows = [
        ("pass 1 / pass 2 sweep time, s", f"{first_summary.elapsed_s:.1f}/{second_summary.elapsed_s:.1f}"),
        ("contended stored (pass 1 / pass 2)", f"{first_summary.contended}/{second_summary.contended}"),
        ("contended re-measurements (pass 1 / pass 2)", f"{first_summary.remeasured_contended}/{second_summary.remeasured_contended}"),
        ("median of medians, ms", f"{float(a.median()):.3f}"),
        ("median relative difference, %", f"{100 * float(rel.median()):.2f}"),
        ("mean relative difference, %", f"{100 * float(rel.mean()):.2f}"),
        ("worst relative difference, %", f"{100 * float(rel.max()):.2f}"),
        ("share differing > 5%, %", f"{100 * float((rel > 0.05).mean()):.1f}"),
        ("share differing > 10%, %", f"{100 * float((rel > 0.10).mean()):.1f}"),
        ("p10 wall time: median rel. diff / share > 5%", f"{100 * float(rel_p10.median()):.2f}/{100 * float((rel_p10 > 0.05).mean()):.1f}"),
        ("median CPU time: median rel. diff / share > 5%", f"{100 * float(rel_cpu.median()):.2f}/{100 * float((rel_cpu > 0.05).mean()):.1f}"),
    ]
    for name, value in rows:
        print(f"{name:<48} {value:>12}")


if __name__ == "__main__":
    main()
