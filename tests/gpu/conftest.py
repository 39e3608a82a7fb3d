"""GPU tests (``make test-gpu``): every test here is marked ``gpu`` and ``slow`` and skips, with the reason, where
CUDA (or vLLM, or a second GPU) is missing, so a CPU machine selects them and reports skips instead of exit 5."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

GPU_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if GPU_DIR in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.gpu)
            item.add_marker(pytest.mark.slow)


def cuda_devices() -> int:
    """Number of visible CUDA devices (0 without CUDA or without torch)."""
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


@pytest.fixture(scope="session", autouse=True)
def _needs_cuda() -> None:  # session scope: it runs before the module fixtures that load models
    if cuda_devices() == 0:
        pytest.skip("no CUDA device (torch.cuda.is_available() is False): GPU tests run on a CUDA machine")


@pytest.fixture(scope="module")
def needs_vllm() -> None:
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("vllm is not importable: pip install -r requirements-gpu.txt in a separate venv (see that file)")


@pytest.fixture
def two_gpus() -> None:
    if cuda_devices() < 2:
        pytest.skip(f"needs >= 2 CUDA devices for a DDP launch, found {cuda_devices()}")
