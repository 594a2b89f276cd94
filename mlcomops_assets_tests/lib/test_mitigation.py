"""fairlearn post-processing narrows the gap it targets, at a measurable accuracy cost."""

from fairlearn.metrics import demographic_parity_difference

from mlcomops_assets.lib import modeling
from mlcomops_assets.lib.mitigation import sensitive_labels, threshold_optimized
from mlcomops_assets.lib.splitting import split_data


def test_threshold_optimizer_narrows_the_demographic_parity_gap(arrests, policy):
    splits = split_data(arrests, policy)
    spec = policy.model.candidates["gradient_boosting"]
    model = modeling.build_pipeline(policy, spec).fit(
        modeling.features(splits.training, policy), modeling.labels(splits.training, policy)
    )
    holdout = splits.holdout
    y = modeling.labels(holdout, policy)
    base = modeling.decisions(modeling.positive_scores(model, holdout, policy), policy)
    mitigated = threshold_optimized(model, splits.training, holdout, "colour", policy)
    groups = holdout["colour"]
    before = demographic_parity_difference(y, base, sensitive_features=groups)
    after = demographic_parity_difference(y, mitigated.decisions, sensitive_features=groups)
    assert after < before / 2, (before, after)
    assert mitigated.scores.shape == (len(holdout),) and set(mitigated.decisions) <= {0, 1}
    again = threshold_optimized(model, splits.training, holdout, "colour", policy)
    assert (again.decisions == mitigated.decisions).all()  # seeded from the policy


def test_intersection_labels_combine_both_attributes(arrests, policy):
    labels = sensitive_labels(arrests.head(3), "colour x sex", policy)
    assert list(labels) == [
        f"{c} & {s}" for c, s in zip(arrests["colour"].head(3), arrests["sex"].head(3), strict=True)
    ]
