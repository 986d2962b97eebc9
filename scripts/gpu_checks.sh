#!/usr/bin/env bash
# The GPU checks of issue #14 on a lent NVIDIA device (the `device` tool), in one call.
#
#   bash scripts/gpu_checks.sh prepare     # here: ComfyUI 0.33 source + the wheels the device lacks, in .gpu/
#   bash scripts/gpu_checks.sh run         # there (carry .gpu): gpu_checks.py, then the full-size bench
#
# The device has Python 3.12 with torch, transformers, safetensors, ... but none of ComfyUI's own requirements
# (comfy-aimdo, comfy-kitchen, av, torchsde, alembic, ...) and no network: `prepare` downloads those as py3.12
# manylinux wheels into .gpu/wheels (ignored by git through .git/info/exclude) beside the ComfyUI tarball.
# `run` installs them to /tmp/site, extracts ComfyUI and writes gpu_checks.json, bench_full.json and logs to $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
WHEELS=(comfy-aimdo==0.4.13 comfy-kitchen==0.2.31 torchsde==0.2.6 trampoline==0.1.2 av==18.1.0 alembic sqlalchemy
        mako simpleeval blake3 spandrel==0.4.2 kornia==0.9.0 kornia-rs==0.2.0 pydantic-settings python-dotenv
        greenlet diffusers==0.42.1 aiohttp yarl multidict propcache frozenlist aiosignal aiohappyeyeballs)
case "${1:-}" in
prepare)
    grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
    mkdir -p .gpu/wheels
    cp ../shared/comfyui/ComfyUI-0.33.0-*.tar.gz .gpu/
    for w in "${WHEELS[@]}"; do
        python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
            --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
            --platform any -d .gpu/wheels "$w"
    done
    du -sh .gpu
    echo "now: device run with carry [\".gpu\"] and command: bash scripts/gpu_checks.sh run"
    ;;
run)
    : "${OUT:?run this on the device, where \$OUT is set}"
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .gpu/wheels/*.whl
    export PYTHONPATH=/tmp/site PYTHONUNBUFFERED=1 LCM_KIT_TESTBED=/tmp/lcm-kit-testbed HF_HUB_OFFLINE=1
    mkdir -p /tmp/comfy && tar xzf .gpu/ComfyUI-0.33.0-*.tar.gz -C /tmp/comfy
    export COMFYUI_DIR=/tmp/comfy/ComfyUI TORCHINDUCTOR_CACHE_DIR=/tmp/inductor
    nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/gpu.txt"
    python3 scripts/gpu_checks.py --out "$OUT/gpu_checks.json" 2>&1 | tee "$OUT/gpu_checks.log" || true
    python3 scripts/bench.py --full-size --out "$OUT/bench_full.json" 2>&1 | tee "$OUT/bench_full.log"
    ;;
*)
    echo "usage: bash scripts/gpu_checks.sh prepare|run" >&2
    exit 2
    ;;
esac
