"""Benchmark steps in a child process: a step that dies says so, and the synthetic
descriptors are the same whether written into a larger array or returned."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
from ansim.benchmarks.processes import StepDied, in_child
from ansim.benchmarks.robust_descriptors import distractor_descriptors


def killed_step() -> None:
    os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's OOM killer would


def answering_step(value: int) -> int:
    return value * 2


def test_a_step_answers_from_its_child() -> None:
    assert in_child(answering_step, 21) == 42


def test_a_step_killed_in_its_child_is_reported_by_name() -> None:
    with pytest.raises(StepDied, match="killed_step"):
        in_child(killed_step)


def test_distractors_written_in_place_equal_those_returned() -> None:
    centres = np.random.default_rng(1).normal(size=(5, 16)).astype(np.float32)
    returned = distractor_descriptors(1_000, centres, seed=7, chunk=300)
    into = np.zeros((1_010, 16), dtype=np.float32)
    distractor_descriptors(1_000, centres, seed=7, chunk=300, out=into[10:])
    assert np.array_equal(into[10:], returned) and not into[:10].any()
