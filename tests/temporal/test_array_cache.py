"""The temporal tools' cache of values derived from frames (flows, guides, proxies)."""

from __future__ import annotations

import gc

import numpy as np

from composite.temporal._common import ArrayCache


def test_values_follow_their_arrays_and_go_with_them():
    cache = ArrayCache(capacity=8, max_bytes=1 << 20)
    made = []

    def make(v):
        made.append(v)
        return np.full(1000, v, np.float32)          # 4000 bytes

    a, b = np.zeros(3, np.float32), np.ones(3, np.float32)
    assert cache.get((a,), "x", lambda: make(1))[0] == 1
    assert cache.get((a,), "x", lambda: make(2))[0] == 1       # cached: not made again
    assert cache.get((a, b), "x", lambda: make(3))[0] == 3     # another key
    assert made == [1, 3] and cache._bytes == 8000
    del a
    gc.collect()
    # Storing a new value drops both entries derived from the array that is gone.
    assert cache.get((b,), "y", lambda: make(4))[0] == 4
    assert cache._bytes == 4000 and len(cache._items) == 1


def test_byte_budget_and_oversized_values():
    cache = ArrayCache(capacity=8, max_bytes=10_000)
    keep = [np.zeros(1, np.float32) for _ in range(4)]
    for i, k in enumerate(keep):
        cache.get((k,), "x", lambda i=i: np.full(1000, i, np.float32))
    assert cache._bytes <= 10_000 and len(cache._items) == 2    # the oldest were evicted
    big = cache.get((keep[0],), "big", lambda: np.zeros(5000, np.float32))
    assert big.nbytes == 20_000 and ("big" not in {key[1] for key in cache._items})
