"""Worker and thread counts follow the cores the process may use (its CPU affinity), not the machine's."""

import os

from benchmark.workers import available_cores, n_workers, threads_per_worker


def test_a_process_pinned_to_one_core_gets_one_thread_per_worker(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {1}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert available_cores() == 1
    assert threads_per_worker(n_workers(1)) == 1 and n_workers(-1) == 1


def test_four_allowed_cores_are_shared_among_the_workers(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert threads_per_worker(n_workers(1)) == 4 and threads_per_worker(2) == 2 and threads_per_worker(8) == 1
    assert n_workers(-1) == 4 and n_workers(3) == 3


def test_without_an_affinity_api_the_machine_count_is_used(monkeypatch):
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert available_cores() == 6 and threads_per_worker(3) == 2
