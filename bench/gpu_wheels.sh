#!/usr/bin/env bash
# Fetch, on a machine with a package index, the small wheels the GPU check carries to a GPU machine that
# has python3, torch (CUDA), onnx, onnxruntime, pandas, scikit-learn, click, pyyaml, tqdm and matplotlib
# but no network: pydantic (its compiled core for CPython 3.11-3.14 on x86_64 and aarch64), platformdirs,
# skops. About 20 MB; the run carries the folder (e.g. the device tool's carry: ["bench/.gpu-wheels"]).
#
#   bash bench/gpu_wheels.sh            # -> bench/.gpu-wheels/ (git-ignored)
#
# The versions are the ones this project is tested with. The GPU check installs only those its machine lacks.
set -euo pipefail
REPO=$(cd "$(dirname "$0")/.." && pwd)
DEST=${1:-$REPO/bench/.gpu-wheels}
PIP=${PIP:-pip}
mkdir -p "$DEST"
for machine in x86_64 aarch64; do
    for version in 3.11 3.12 3.13 3.14; do
        "$PIP" download --quiet --no-deps --only-binary=:all: --python-version "$version" --implementation cp \
            --platform "manylinux2014_$machine" --platform "manylinux_2_17_$machine" -d "$DEST" pydantic-core==2.50.5
    done
done
"$PIP" download --quiet --no-deps --only-binary=:all: --platform any --python-version 3.11 -d "$DEST" \
    pydantic==2.14.4 annotated-types==0.8.0 typing-inspection==0.4.5 typing-extensions==4.16.0 \
    platformdirs==4.14.9 skops==0.16.0 prettytable==3.18.0 wcwidth==0.9.4
du -sh "$DEST"
