"""The data and teacher cache reach Ray workers without a copy per worker (real Ray, one CPU)."""

from __future__ import annotations

import dataclasses

import torch

from autokd.search.ray_shipping import for_workers, in_worker
from autokd.training.teacher_cache import TeacherCache


def test_workers_map_the_data_and_teacher_cache_from_the_object_store(tiny_prepared):
    """Each Ray worker unpickled its own copy of the data and the cache (2.7 GB private per worker
    for a 1.3 GiB cache); shipped as NumPy arrays they are mapped, read only, from shared memory."""
    import ray

    from autokd.search.driver import ray_session

    def _landed(shipped) -> dict:  # defined here: Ray pickles it by value (tests/ is not on the workers' path)
        """In a Ray worker: whether each shipped array is a read-only view of the object store, whether
        the tensors made of it share its memory, and their sums."""
        from autokd.search.ray_shipping import _Shipped

        data, cache = shipped
        arrays = [data.train.x, data.train.y, data.val.x, cache.logits, *cache.features.values()]
        landed_data, landed_cache = in_worker(data), in_worker(cache)
        tensors = [landed_data.train.x, landed_data.train.y, landed_data.val.x, landed_cache.logits,
                   *landed_cache.features.values()]
        return {
            "shipped": all(isinstance(a, _Shipped) for a in arrays),
            "read_only_views": all(not a.array.flags.writeable and not a.array.flags.owndata for a in arrays),
            "no_copy": all(t.data_ptr() == a.array.ctypes.data for t, a in zip(tensors, arrays)),
            "sums": [float(t.double().sum()) for t in tensors],
            "batch": float(next(landed_data.batches("train", 4, shuffle=True))[1].sum()),
        }

    data = tiny_prepared.data
    n = len(data.train)
    cache = TeacherCache(torch.randn(n, data.num_classes), {"stages.1": torch.randn(n, 3, 5).half()})
    expected = [float(t.double().sum()) for t in (data.train.x, data.train.y, data.val.x, cache.logits,
                                                   cache.features["stages.1"])]
    with ray_session(None, 1):
        ref = ray.put((for_workers(data), for_workers(cache)))
        seen = ray.get(ray.remote(_landed).options(num_cpus=1).remote(ref))
    assert seen["shipped"] and seen["read_only_views"] and seen["no_copy"], seen
    assert seen["sums"] == expected and seen["batch"] != 0


def test_what_numpy_cannot_hold_travels_as_a_tensor_and_the_rest_is_unchanged(tiny_prepared):
    odd = {"bf16": torch.ones(3, dtype=torch.bfloat16), "grad": torch.ones(2, requires_grad=True),
           "names": ("a", "b"), "n": 3}
    back = in_worker(for_workers(odd))
    assert back["bf16"].dtype == torch.bfloat16 and back["grad"].requires_grad and back["names"] == ("a", "b")
    data = in_worker(for_workers(tiny_prepared.data))
    assert dataclasses.replace(data, train=tiny_prepared.data.train).fingerprint == tiny_prepared.data.fingerprint
    assert torch.equal(data.train.x, tiny_prepared.data.train.x) and data.spec == tiny_prepared.data.spec
    assert data.normalize == tiny_prepared.data.normalize and data.class_names == tiny_prepared.data.class_names
