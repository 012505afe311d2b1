"""Shared timing helper for the benchmarks."""
import time


def best_time(f, repeats: int) -> float:
    """Shortest wall time of ``repeats`` calls of ``f()`` (seconds)."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)
