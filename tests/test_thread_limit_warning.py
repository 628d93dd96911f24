"""executor= without threadpoolctl: the workers cannot limit their BLAS threads, which made a
BLAS-bound check run at 0.26x the serial speed on 2 process workers. gradcheck says so, once
per process, at the user's own call."""
from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

import gradcheck as gc
from gradcheck import parallel
from gradcheck.examples.layers import Dense

X = np.random.default_rng(0).standard_normal((8, 4))


class FakeController:
    """Stands in for threadpoolctl's controller: limits nothing, restores nothing."""

    def limit(self, limits: int) -> Any:
        return self

    def restore_original_limits(self) -> None:
        pass


def _ours(record: list[warnings.WarningMessage]) -> list[warnings.WarningMessage]:
    return [w for w in record if issubclass(w.category, parallel.ThreadLimitWarning)]


def test_an_executor_without_threadpoolctl_warns_once_per_process_at_the_users_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(parallel, "_controller", False)  # as if the import had failed
    monkeypatch.setattr(parallel, "_warned_threads", False)  # a process that has not warned
    with ThreadPoolExecutor(2) as pool, warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        for _ in range(2):  # two checks, one warning
            assert gc.check_layer(Dense(), X, mode="full", executor=pool).ok
    [warning] = _ours(record)
    assert warning.filename == __file__  # the user's call, not gradcheck's insides
    assert "pip install threadpoolctl" in str(warning.message)
    assert "0.26x the serial speed" in str(warning.message)


def test_no_warning_when_the_threads_can_be_limited_or_no_executor_is_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(parallel, "_warned_threads", False)
    monkeypatch.setattr(parallel, "_controller", False)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert gc.check_layer(Dense(), X, mode="full").ok  # serial: nothing to limit
        monkeypatch.setattr(parallel, "_controller", FakeController())
        with ThreadPoolExecutor(2) as pool:
            assert gc.check_layer(Dense(), X, mode="full", executor=pool).ok
    assert _ours(record) == []
