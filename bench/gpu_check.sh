#!/usr/bin/env bash
# The GPU check: from a copy of this repository on a machine with an NVIDIA GPU, no network and a python3
# that has torch (CUDA), onnx, onnxruntime, pandas, scikit-learn, click, pyyaml, tqdm and matplotlib:
#
#   0. makes the project importable without installing anything into that python: the wheels it lacks
#      (from bench/.gpu-wheels/, fetched beforehand by bench/gpu_wheels.sh and carried with the copy) are
#      unpacked into a scratch folder, and that folder and the repository go on PYTHONPATH
#   1. checks the torch-cuda device (vidlat devices check)
#   2. profiles the default space on torch-cuda, with 30 random whole networks and the reference archs
#   3. fits the predictors and evaluates them on the measured networks
#   4. runs a short DNAS of the default space with torch-cuda's table as the latency cost
#      (the supernet trains on the CPU; the GPU is the device the search is for)
#   5. measures the arch it found on the GPU, beside its predicted latency
#
# and writes every figure to one file, OUT_DIR/gpu_check.txt (OUT_DIR: the argument, else $OUT, else
# out/gpu-check). Each step has a time limit; together they stay under 8 minutes.
#
#   bash bench/gpu_check.sh [OUT_DIR]
#   bash bench/gpu_check.sh --dry-run [OUT_DIR]   the same steps on this machine's CPU: torch on one thread
#                                                 with a short policy, the tiny space, 20 networks, tiny
#                                                 search (a slow test in tests/test_torch_cuda.py)
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
DRY=0
if [[ ${1:-} == --dry-run ]]; then DRY=1; shift; fi
OUT_DIR=${1:-${OUT:-$REPO/out/gpu-check}}
PY=${PYTHON:-python3}
WHEELS=$REPO/bench/.gpu-wheels
mkdir -p "$OUT_DIR"
OUT_DIR=$(cd "$OUT_DIR" && pwd)
WORK=$(mktemp -d "${TMPDIR:-/tmp}/vidlat-gpu-check.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
REPORT=$OUT_DIR/gpu_check.txt
STORE=$WORK/latency.sqlite
: > "$REPORT"
STARTED=$SECONDS

note() { echo "$*" | tee -a "$REPORT"; }

# step TITLE LIMIT_S COMMAND...: runs it (`vidlat ...` is the CLI) under a time limit, its output into the report
step() {
    local title=$1 limit=$2 begin=$SECONDS status=0
    shift 2
    note ""
    note "== $title"
    note "\$ $*"
    [[ $1 == vidlat ]] && set -- "$PY" -c "$VIDLAT" "${@:2}"
    timeout "$((limit * LIMIT_SCALE))" "$@" > "$WORK/step.log" 2>&1 || status=$?
    grep -v $'\r' "$WORK/step.log" | tee -a "$REPORT" || true
    note "-- $title: exit $status, $((SECONDS - begin)) s"
    ((status == 0)) || FAILED+=("$title")
}
FAILED=()  # a failed step is reported and the next ones still run: the report keeps what did work

VIDLAT='import sys; from vidlat.cli import main; sys.argv[0] = "vidlat"; main()'  # `vidlat` without installing it

# ---------------------------------------------------------------------------- 0. a python that imports vidlat
SITE=$WORK/site
missing=()
"$PY" -c 'import pydantic, sys; sys.exit(int(pydantic.VERSION.split(".")[0]) < 2)' 2>/dev/null \
    || missing+=(pydantic pydantic-core annotated-types typing-inspection typing-extensions)
"$PY" -c 'import platformdirs' 2>/dev/null || missing+=(platformdirs)
"$PY" -c 'import skops' 2>/dev/null || missing+=(skops prettytable wcwidth)
if ((${#missing[@]})); then
    if [[ ! -d $WHEELS ]]; then
        note "error: this python lacks ${missing[*]} and $WHEELS is not here; run bench/gpu_wheels.sh where there is an index and carry the folder"
        exit 2
    fi
    # a wheel is a zip: unpacking the one that fits this python and machine is all an import needs (no pip, no index)
    "$PY" - "$WHEELS" "$SITE" "${missing[@]}" <<'PYTHON' 2>&1 | tee -a "$REPORT"
import platform, sys, zipfile
from pathlib import Path

wheels, site, wanted = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
python = f"cp{sys.version_info.major}{sys.version_info.minor}"
for name in wanted:
    for wheel in sorted(wheels.glob("*.whl")):
        dist, *_, tag, abi, plat = wheel.name[:-4].split("-")
        if dist.lower() == name.replace("-", "_") and tag in ("py3", python) and (plat == "any" or platform.machine() in plat):
            zipfile.ZipFile(wheel).extractall(site)
            break
    else:
        sys.exit(f"error: no carried wheel of {name} for {python} on {platform.machine()} in {wheels}")
PYTHON
fi
export PYTHONPATH=$REPO:$SITE${PYTHONPATH:+:$PYTHONPATH}
export VIDLAT_STORE=$STORE

note "vidlat GPU check ($([[ $DRY == 1 ]] && echo "dry run on the CPU" || echo "GPU")), $(date -u '+%Y-%m-%d %H:%M UTC')"
note "host: $(uname -srm), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
note "installed from carried wheels: ${missing[*]:-nothing}"
"$PY" - <<'PYTHON' | tee -a "$REPORT"
import platform, torch, onnxruntime
print(f"python {platform.python_version()}, torch {torch.__version__} (CUDA {torch.version.cuda}), onnxruntime {onnxruntime.__version__}")
if torch.cuda.is_available():
    props = torch.cuda.get_device_properties(0)
    print(f"GPU 0: {props.name}, capability {props.major}.{props.minor}, {props.total_memory // 2**20} MiB; cuDNN {torch.backends.cudnn.version()}")
else:
    print("no CUDA GPU visible to torch")
PYTHON
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee -a "$REPORT" || true

if [[ $DRY == 1 ]]; then
    DEVICE=$WORK/gpu-check-cpu.yaml
    cat > "$DEVICE" <<'YAML'
name: gpu-check-cpu
description: The GPU check's dry run, torch eager on one CPU thread with a short measurement policy.
backend: torch
options: {threads: 1, mode: eager}
measurement: {warmup_runs: 1, min_runs: 3, max_runs: 5, max_seconds: 0.2}
YAML
    LIMIT_SCALE=3  # a small shared CPU machine, not the GPU machine the limits are for
    SPACE=tiny NETWORKS=20 SEARCH=(--epochs 2 --warmup 1 --train-clips 20 --batch-size 10 --frames 4 --size 16 --threads 1)
else
    DEVICE=torch-cuda LIMIT_SCALE=1
    SPACE=default NETWORKS=30 SEARCH=(--epochs 3 --warmup 1 --train-clips 300 --threads "$(nproc)")
fi

# ---------------------------------------------------------------------------- 1-5
step "1/5 device check" 60 vidlat devices check "$DEVICE"
step "2/5 profile $SPACE on $DEVICE ($NETWORKS networks + references)" 180 \
    vidlat profile --device "$DEVICE" --space "$SPACE" --networks "$NETWORKS" --quiet
step "3a/5 fit" 45 vidlat fit --device "$DEVICE" --space "$SPACE"
step "3b/5 evaluate on the measured networks" 45 \
    vidlat evaluate --device "$DEVICE" --space "$SPACE" --out "$WORK/evaluate" --json
step "4/5 search $SPACE for $DEVICE" 120 \
    vidlat search --device "$DEVICE" --space "$SPACE" "${SEARCH[@]}" --out "$WORK/search"
step "5/5 the found arch measured on $DEVICE" 30 \
    "$PY" "$REPO/bench/gpu_check_arch.py" --device "$DEVICE" --arch "$WORK/search/arch.yaml" --store "$STORE"

note ""
note "== done in $((SECONDS - STARTED)) s; ${#FAILED[@]} step(s) failed${FAILED:+: ${FAILED[*]}}; report $REPORT"
((${#FAILED[@]} == 0))
