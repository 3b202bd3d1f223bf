"""autokd's data layer: data sets held in memory as tensors, seeded splits, index batching.

>>> data = load_task_data(DataSpec(name="mnist1d", num_samples=600))
>>> for idx, x, y in data.batches("train", 64, shuffle=True): ...
"""

from .batches import Split, iterate_batches, random_crop, random_hflip, standard_augment
from .loading import TaskData, cache_dir, describe, load_task_data
from .validate import validate_spec
from .spec import DATASETS, DataSpec
from .splits import split_indices

__all__ = [
    "DATASETS",
    "DataSpec",
    "Split",
    "TaskData",
    "cache_dir",
    "describe",
    "iterate_batches",
    "load_task_data",
    "random_crop",
    "random_hflip",
    "split_indices",
    "standard_augment",
    "validate_spec",
]
