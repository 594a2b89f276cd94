"""Only scikit-learn/numpy types are trusted when the model is saved with skops."""

import pytest

from mlcomops_assets.lib import modeling
from mlcomops_assets.lib.model_registry import UntrustedModelError, pip_requirements, trusted_types


def test_trusted_types_cover_the_tree_model(arrests, policy):
    spec = policy.model.candidates["gradient_boosting"]
    model = modeling.build_pipeline(policy, spec).fit(
        modeling.features(arrests, policy), modeling.labels(arrests, policy)
    )
    types = trusted_types(model)
    assert "sklearn.tree._tree.Tree" in types
    assert all(t.startswith(("sklearn.", "numpy.")) for t in types)
    assert any(r.startswith("scikit-learn==1.") for r in pip_requirements())


def test_foreign_types_are_refused(arrests, policy):
    from sklearn.preprocessing import FunctionTransformer

    from mlcomops_assets_tests.lib import foreign

    model = FunctionTransformer(foreign.double)
    with pytest.raises(UntrustedModelError, match="outside scikit-learn/numpy"):
        trusted_types(model)
