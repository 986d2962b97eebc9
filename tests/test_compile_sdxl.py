"""Compile on the tiny SDXL UNet (issue #5), in a file of its own: dynamo traces the whole SDXL UNet
(about 100 s on 2 cores), so pytest-xdist can run it beside test_optimize.py."""
from __future__ import annotations

import pytest
import torch

from test_optimize import COMPILE, _run


@pytest.fixture(scope="module")
def compiler(pack):
    return pack.nodes.torch_compile


@pytest.mark.slow
def test_sdxl_unet_compiles_and_lora_changes_do_not_recompile(comfy, base_dir, compiler, sdxl_models):
    """SDXL's UNet (label embedding, 10-deep transformers) through the same wrapper. Dynamo's
    `eager` backend: recompiles are dynamo's decision whatever the backend, and an inductor compile of
    this UNet takes many minutes on 2 cores. Attention auto (the default) makes it one graph per shape;
    with ComfyUI's CPU attention, the pieces between attention blocks hit dynamo's recompile limit."""
    settings = {**COMPILE, "backend": "eager"}
    run = dict(ckpt="tiny-sdxl.safetensors", size=64, steps=1, compile=settings)
    first, compiled_graphs = _run(comfy, base_dir, compiler, loras=[("tiny-sdxl-style-kohya.safetensors", 1.0)], **run)
    assert compiled_graphs > 0
    second, new_graphs = _run(comfy, base_dir, compiler, loras=[("tiny-sdxl-style-kohya.safetensors", 0.3)], seed=5,
                              **run)
    assert new_graphs == 0
    eager, _ = _run(comfy, base_dir, compiler, loras=[("tiny-sdxl-style-kohya.safetensors", 0.3)], seed=5,
                    **{**run, "compile": None})
    assert torch.allclose(second, eager, atol=1e-3) and not torch.allclose(first, second, atol=1e-2)
