"""autokd: automated knowledge-distillation strategy search.

Importing the package is cheap; torch, Ray and Optuna load only in the modules that need them.
"""

__version__ = "0.1.0"
