"""bench.gpu_check: refuses clearly without CUDA, before building or loading anything; knows its GPUs' peaks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.gpu_check import peak_tflops

ROOT = Path(__file__).resolve().parent.parent


def test_refuses_without_cuda_before_loading_anything(tmp_path):
    home = tmp_path / "home"
    # No GPU visible even on a GPU box, and a workbench home of its own: nothing may be written there.
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", WORKBENCH_HOME=str(home), HF_HUB_OFFLINE="1")
    proc = subprocess.run(
        [sys.executable, "-m", "bench.gpu_check", "--quick"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,  # a guard against a hang, not a speed check
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "needs a CUDA GPU" in lines[0]
    assert "torch.cuda.is_available() is False" in lines[0]
    assert "python -m bench.gpu_check" in lines[0] and "GPU worker" in lines[0]
    assert proc.stdout == ""
    assert not home.exists()  # no demo data, no tiny model built: it stopped before setting anything up


@pytest.mark.parametrize(
    ("name", "tflops"),
    [
        ("NVIDIA H100 80GB HBM3", 989.0),
        ("NVIDIA H200", 989.0),
        ("NVIDIA H100 PCIe", 756.0),
        ("NVIDIA A100-SXM4-80GB", 312.0),
        ("NVIDIA A10G", 125.0),
        ("NVIDIA L4", 121.0),
        ("NVIDIA L40S", 362.0),
        ("Tesla T4", 65.0),
        ("NVIDIA GeForce GTX 1080", None),
    ],
)
def test_peak_tflops_by_device_name(name, tflops):
    peak, source = peak_tflops(name)
    assert peak == tflops
    if tflops is None:
        assert name in source and "--peak-tflops" in source
