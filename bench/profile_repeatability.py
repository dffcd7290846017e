"""Bench: profile a space twice in one run and compare the two lookup tables (and whole networks).

    .venv/bin/python bench/profile_repeatability.py --space default --device ort-cpu-1t --networks 20

Both passes use the device's own policy (interleaved rounds with a canary by default; add
``--sequential`` to time one workload after another) and one store, as a user re-measuring does
(the second pass with ``remeasure``, so both share the store's canary reference); the second pass
walks the workloads in reverse order so that drift of the machine does not line up with the key order.
Prints the median relative difference of the two tables' medians (issue 13's target: <= 1% per
entry) and the share of workloads whose two medians differ by more than 5%; the same for p10 wall
time and median CPU time; with ``--networks N``, the Kendall tau and median difference of the
whole networks between the passes (target: Kendall >= 0.9 on ONNX Runtime) and the split-half
repeat inside each pass.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from predictors.evaluation import split_half_repeat
from predictors.metrics import kendall_tau
from predictors.network import network_frame
from profiler.backends import create_backend
from profiler.catalog import resolve_device
from profiler.store import LatencyStore
from profiler.sweep import profile_workloads
from search.space import load_space


def one_pass(device, workloads, store_path: Path, *, remeasure: bool):
    backend = create_backend(device)
    try:
        with LatencyStore(store_path) as store:
            summary = profile_workloads(backend, store, workloads, remeasure=remeasure, progress=False)
            table = store.table(device.name).set_index("key")
    finally:
        backend.close()
    return table, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--space", default="tiny")
    parser.add_argument("--device", default="ort-cpu-1t")
    parser.add_argument("--networks", type=int, default=0, help="also N random whole networks (+ the reference archs)")
    parser.add_argument("--sequential", action="store_true", help="time one workload after another (policy interleave off)")
    args = parser.parse_args()

    workloads = list({w.key: w for w in load_space(args.space).profiling_workloads(networks=args.networks)}.values())
    device = resolve_device(args.device)
    if args.sequential:
        device = device.model_copy(update={"measurement": device.measurement.model_copy(update={"interleave": False})})
    with tempfile.TemporaryDirectory() as folder:
        store = Path(folder) / "repeat.sqlite"  # one store: the second pass re-measures under the same canary reference
        first, first_summary = one_pass(device, workloads, store, remeasure=False)
        second, second_summary = one_pass(device, workloads[::-1], store, remeasure=True)
    networks = [network_frame(table.reset_index()).set_index("key") for table in (first, second)]
    first, second = (table[~table.index.isin(frame.index)] for table, frame in zip((first, second), networks))
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
        ("canary: rounds re-run / kept flagged (pass 1; pass 2)",
         f"{first_summary.rerun_rounds}/{first_summary.flagged_rounds}; {second_summary.rerun_rounds}/{second_summary.flagged_rounds}"),
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
    if args.networks:
        common = networks[0].index.intersection(networks[1].index)
        one, two = (frame.loc[common, "median_ms"].to_numpy(float) for frame in networks)
        net_rel = abs(one - two) / ((one + two) / 2)
        rows += [
            ("whole networks measured in both passes", f"{len(common)}"),
            ("networks: Kendall tau between the passes", f"{kendall_tau(one, two):.3f}"),
            ("networks: median / worst relative difference, %", f"{100 * float(np.median(net_rel)):.2f}/{100 * float(net_rel.max()):.2f}"),
        ]
        for index, frame in enumerate(networks, start=1):
            halves = split_half_repeat(frame.loc[common].reset_index())
            if halves is not None:
                rows.append((f"networks: split-half Kendall inside pass {index}", f"{kendall_tau(*halves):.3f}"))
    for name, value in rows:
        print(f"{name:<56} {value:>14}")


if __name__ == "__main__":
    main()
