"""autokd: automated knowledge-distillation strategy search.

Importing the package is cheap; torch, Ray and Optuna load only in the modules that need them.
"""

__version__ = "0.1.0"


def load_student(path, deployed: bool = True):
    """The student saved by ``autokd train --save PATH``, rebuilt for inference (eval mode, CPU):
    as deployed (an 8-bit student with int8 kernels), or with ``deployed=False`` as trained.
    See :mod:`autokd.compression.saved`."""
    from autokd.compression.saved import load_student as _load

    return _load(path, deployed)
