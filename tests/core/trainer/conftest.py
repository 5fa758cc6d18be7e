"""Trainer tests run tiny models: one intra-op thread is faster than two on a shared 2-core box
(thread oversubscription made the same forward 10x slower in measurements here)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True)
def _private_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Model-written teacher texts are cached on disk; tests must not share the user's cache."""
    monkeypatch.setenv("UNISD_TEACHER_CACHE_DIR", str(tmp_path_factory.mktemp("teacher-cache")))
