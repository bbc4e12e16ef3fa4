#!/bin/bash
# The device command: carried wheels into a temporary site folder, then bench/gpu_ancestors.py on a cold build dir.
# Usage (device tool, carry [".gpu"] holding whl/ and models/**/release.json, timeout_s 480): bash bench/gpu_ancestors_device.sh. The tracked tree must be under the tool's 64 MiB: move models/default aside for the call (its release.json copies travel in .gpu/models)
# The wheels in .gpu/whl (pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp
# --platform manylinux2014_x86_64 ...; versions of requirements.lock): transformers 5.24.0, tokenizers 0.23.3,
# datasets 5.2.0, dill 0.4.1, multiprocess 0.70.19, fsspec 2026.9.0, pydantic 2.14.4, pydantic-core 2.50.5,
# annotated-types 0.8.0, typing-inspection 0.4.5, typing-extensions 4.16.0, langdetect 1.0.9 (no wheel on PyPI:
# `pip wheel langdetect==1.0.9`). The machine's own torch (2.11, CUDA) and huggingface-hub (1.33) are used.
T0=$(date +%s)
set -o pipefail
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
SITE=$(mktemp -d) BUILD=$(mktemp -d)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .gpu/whl/*.whl || exit 3
# CPTLIB_MODELS_DIR: copies of models/default/**/release.json (the CPU numbers), when models/ does not travel
export PYTHONPATH=$SITE:$PWD PYTHONUNBUFFERED=1 CPTLIB_BUILD_DIR=$BUILD CPTLIB_MODELS_DIR=$PWD/.gpu/models
python3 -m pip list 2>/dev/null | grep -iE '^(torch|accelerate|numpy|pandas|pyarrow|xxhash|safetensors|huggingface.hub|typing.extensions|six|regex) '
echo "install: $(( $(date +%s) - T0 )) s"
python3 bench/gpu_ancestors.py --out "$OUT" --require-cuda --t0 "$T0" --deadline "${DEADLINE:-440}" 2>&1 | tee "$OUT/log.txt"
