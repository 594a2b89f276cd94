"""Logging a fitted pipeline to MLflow so it loads back safely.

MLflow 3.17 saves scikit-learn models with skops and refuses types it does not trust. Instead of a
blanket pickle, the exact types this pipeline needs are listed, restricted to scikit-learn and numpy,
and recorded with the model, so a reviewer sees what loading it will trust.
"""

from __future__ import annotations

from importlib.metadata import version
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

_TRUSTED_PREFIXES = ("sklearn.", "numpy.")
_RUNTIME_PACKAGES = ("scikit-learn", "skops", "numpy", "pandas", "scipy")


class UntrustedModelError(RuntimeError):
    """The model references a type outside scikit-learn and numpy; it is not logged."""


def trusted_types(model: Pipeline) -> list[str]:
    """The non-default types skops must trust to load ``model``; only sklearn/numpy are allowed."""
    import skops.io as sio

    needed = sorted(sio.get_untrusted_types(data=sio.dumps(model)))
    foreign = [t for t in needed if not t.startswith(_TRUSTED_PREFIXES)]
    if foreign:
        raise UntrustedModelError(f"model needs types outside scikit-learn/numpy: {foreign}")
    return needed


def pip_requirements() -> list[str]:
    """Exact versions of what the model needs to load (avoids MLflow's slow requirement inference)."""
    return [f"{name}=={version(name)}" for name in _RUNTIME_PACKAGES]
