#!/usr/bin/env bash
# The GPU checks of issue #14 on a lent NVIDIA device (the `device` tool), in one call.
#
#   bash scripts/gpu_checks.sh prepare     # here: ComfyUI 0.33 source + the wheels the device lacks, in .gpu/
#   bash scripts/gpu_checks.sh run         # there (carry .gpu): gpu_checks.py, then the full-size bench
#
# The device has Python 3.12 with torch, transformers, safetensors, ... but none of ComfyUI's own requirements
# (comfy-aimdo, comfy-kitchen, av, torchsde, alembic, ...), no diffusers (the bench's reference) and no network.
# `prepare` installs those wheels (py3.12, manylinux, no deps) into .gpu/site without bytecode, drops
# comfy-kitchen's AMD (HIP) backend and diffusers' pipelines (the bench needs only its UNet and schedulers), and packs
# the folder as .gpu/site.tar.xz: 54 MB, 58 MiB with the ComfyUI tarball beside it (a call carries 64 MiB at most).
# .gpu/ is ignored by git (.git/info/exclude). `run` unpacks both and writes gpu_checks.json, bench_full.json and
# their logs to $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
# ComfyUI 0.33's hard imports the device lacks (kornia, spandrel: optional nodes, left out for size) + diffusers.
WHEELS=(comfy-aimdo==0.4.13 comfy-kitchen==0.2.31 torchsde==0.2.6 trampoline==0.1.2 av==18.1.0 alembic sqlalchemy
        mako simpleeval blake3 pydantic pydantic-core annotated-types typing-inspection pydantic-settings
        python-dotenv greenlet diffusers==0.42.1)
case "${1:-}" in
prepare)
    grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
    rm -rf .gpu && mkdir -p .gpu
    cp ../shared/comfyui/ComfyUI-0.33.0-*.tar.gz .gpu/
    python3 -m pip install -q --no-deps --no-compile --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        --target .gpu/site "${WHEELS[@]}"
    rm -rf .gpu/site/comfy_kitchen/backends/hip .gpu/site/bin .gpu/site/diffusers/pipelines
    find .gpu/site -name __pycache__ -prune -exec rm -rf {} +
    (cd .gpu && tar cf - site | xz -T0 -9 > site.tar.xz && rm -rf site)
    du -sh .gpu
    echo "now: device run with carry [\".gpu\"] and command: bash scripts/gpu_checks.sh run"
    ;;
run)
    : "${OUT:?run this on the device, where \$OUT is set}"
    tar xJf .gpu/site.tar.xz -C /tmp
    export PYTHONPATH=/tmp/site:$PWD/tests:$PWD/scripts PYTHONUNBUFFERED=1 LCM_KIT_TESTBED=/tmp/lcm-kit-testbed HF_HUB_OFFLINE=1
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
