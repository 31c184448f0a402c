"""Tests of llm_from_scratch.device: the device and the mixed-precision mode chosen by the hardware.

Reference: NVIDIA's compute capabilities of real cards (bf16 tensor cores arrive with Ampere, 8.0),
and torch's own autocast. CUDA and MPS are simulated with monkeypatch where this machine has neither;
the one test that needs a real GPU is marked ``gpu``.
"""

from __future__ import annotations

import pytest
import torch

from llm_from_scratch import device as dev
from llm_from_scratch.device import Precision, precision_for_capability, select_device, select_precision

# Cards learners meet, with their compute capability and the precision they should train in.
KNOWN_GPUS = {
    "V100": ((7, 0), "fp16"),
    "T4 (Colab free tier)": ((7, 5), "fp16"),
    "RTX 2080": ((7, 5), "fp16"),
    "A100": ((8, 0), "bf16"),
    "RTX 3090": ((8, 6), "bf16"),
    "L4": ((8, 9), "bf16"),
    "H100": ((9, 0), "bf16"),
    "P100": ((6, 0), "fp16"),
}


@pytest.mark.parametrize("card", sorted(KNOWN_GPUS))
def test_precision_for_capability_of_known_cards(card):
    capability, expected = KNOWN_GPUS[card]
    assert precision_for_capability(capability) == expected
    assert precision_for_capability(list(capability)) == expected  # a list from JSON works too


def test_no_gpu_means_fp32():
    assert precision_for_capability(None) == "fp32"


def test_precision_objects():
    assert Precision("fp16").autocast_dtype is torch.float16 and Precision("fp16").needs_grad_scaler
    assert Precision("bf16").autocast_dtype is torch.bfloat16 and not Precision("bf16").needs_grad_scaler
    assert Precision("fp32").autocast_dtype is None and not Precision("fp32").needs_grad_scaler
    # The dtype is one torch's autocast accepts: a matmul under it comes out in that dtype.
    a = torch.randn(4, 4)
    with torch.autocast("cpu", dtype=Precision("bf16").autocast_dtype):
        assert (a @ a).dtype == torch.bfloat16


def test_select_precision_on_cpu_and_explicit_choices():
    assert select_precision("cpu") == "fp32"
    assert select_precision(torch.device("cpu"), "auto") == "fp32"
    assert select_precision("cpu", None) == "fp32"
    for name in ("fp32", "bf16", "fp16"):
        assert select_precision("cpu", name) == name  # an explicit choice wins
    with pytest.raises(ValueError, match=r"precision must be one of .*'fp8'"):
        select_precision("cpu", "fp8")


@pytest.mark.parametrize("capability, expected", [((7, 5), "fp16"), ((8, 0), "bf16"), ((9, 0), "bf16")])
def test_select_precision_on_cuda_judges_by_capability(monkeypatch, capability, expected):
    # A T4 answers True to is_bf16_supported() (bf16 is emulated, slowly): the capability must win.
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert select_precision("cuda") == expected
    assert select_precision("cuda:0") == expected
    assert select_precision("cuda", "fp32") == "fp32"


def _fake_hardware(monkeypatch, cuda: bool, mps: bool):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)


@pytest.mark.parametrize("cuda, mps, expected", [(True, True, "cuda"), (True, False, "cuda"),
                                                 (False, True, "mps"), (False, False, "cpu")])
def test_select_device_prefers_cuda_then_mps_then_cpu(monkeypatch, cuda, mps, expected):
    _fake_hardware(monkeypatch, cuda, mps)
    assert select_device() == torch.device(expected)
    assert select_device("auto") == torch.device(expected)
    assert select_device("") == torch.device(expected)
    assert select_device("cpu") == torch.device("cpu")  # an explicit choice wins


def test_select_device_refuses_what_is_not_there(monkeypatch):
    _fake_hardware(monkeypatch, cuda=False, mps=False)
    with pytest.raises(RuntimeError, match=r"no CUDA GPU.*--device cpu"):
        select_device("cuda")
    with pytest.raises(RuntimeError, match=r"no CUDA GPU"):
        select_device("cuda:1")
    with pytest.raises(RuntimeError, match=r"MPS is not available"):
        select_device("mps")
    with pytest.raises(RuntimeError):  # not a device at all: torch's own error
        select_device("tpu-please")


def test_explicit_devices_that_exist(monkeypatch):
    _fake_hardware(monkeypatch, cuda=True, mps=True)
    assert select_device("cuda:1") == torch.device("cuda", 1)
    assert select_device("mps") == torch.device("mps")


def test_module_precisions_constant():
    assert set(dev.PRECISIONS) == {"fp32", "bf16", "fp16"}


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_real_gpu_precision_matches_its_capability():
    capability = torch.cuda.get_device_capability()
    assert select_device() == torch.device("cuda")
    assert select_precision("cuda") == precision_for_capability(capability)
    # And that precision actually runs a matmul under autocast on this card.
    precision = Precision(select_precision("cuda"))
    a = torch.randn(8, 8, device="cuda")
    with torch.autocast("cuda", dtype=precision.autocast_dtype or torch.float32,
                        enabled=precision.autocast_dtype is not None):
        out = a @ a
    assert out.dtype == (precision.autocast_dtype or torch.float32)
