"""Target leakage figures: planted post-outcome columns are found by name and figure, honest ones are not."""

import numpy as np
import pandas as pd
import pytest

from mlcomops_assets.lib.leakage import (
    LeakageNotEvaluated,
    auc_drop_importance,
    auc_findings,
    constant_findings,
    dominant_value_shares,
    model_findings,
    single_feature_aucs,
)
from mlcomops_assets.policy import parse_policy
from mlcomops_assets_tests.conftest import default_policy

MARKER = "MRKCONST77"  # a distinctive cell value: it must never appear in a finding

PLANTED = {
    # A code set by the decision itself, copied from the label with 3% of rows flipped.
    "summons_code": {"role": "feature", "dtype": "category", "allowed_values": ["A", "B"]},
    # Filled in only when someone is released: its presence alone gives the label away.
    "processing_minutes": {"role": "feature", "dtype": "float", "max_null_fraction": 0.5},
    "noise": {"role": "feature", "dtype": "float"},
    "batch_code": {"role": "feature", "dtype": "category"},
    "constant": {"role": "feature", "dtype": "category"},
    "rare_flag": {"role": "feature", "dtype": "category"},
    "mostly_missing": {"role": "feature", "dtype": "float", "max_null_fraction": 1.0},
}


def _policy(columns=PLANTED, **leakage):
    raw = default_policy()
    raw["data"]["columns"].update(columns)
    raw["gates"]["leakage"] = leakage
    return parse_policy(raw)


@pytest.fixture(scope="module")
def planted(arrests) -> pd.DataFrame:
    frame = arrests.copy()
    rng = np.random.default_rng(3)
    released = (frame["released"] == "Yes").to_numpy()
    flipped = rng.random(len(frame)) < 0.03
    frame["summons_code"] = np.where(released ^ flipped, "A", "B")
    # Recorded for released people only, in steps whose middle one is also where a median fill would put
    # the missing rows: only whether the value is missing gives the label away.
    frame["processing_minutes"] = np.where(released, rng.choice([10.0, 20.0, 30.0], len(frame)), np.nan)
    frame["noise"] = rng.normal(size=len(frame))
    frame["batch_code"] = rng.choice(["k1", "k2", "k3", "k4", "k5"], size=len(frame))
    frame["constant"] = MARKER
    frame["rare_flag"] = np.where(np.arange(len(frame)) % 200 == 0, MARKER + "x", "usual")  # 0.5% others
    frame["mostly_missing"] = np.where(np.arange(len(frame)) % 250 == 0, 1.0, np.nan)  # 0.4% present
    return frame


@pytest.fixture(scope="module")
def aucs(planted) -> dict[str, float]:
    policy = _policy()
    return single_feature_aucs(planted, policy.data, policy.gates.leakage, policy.seed)


def test_post_outcome_columns_are_named_with_their_figure(aucs):
    policy = _policy()
    findings = {f.column: f for f in auc_findings(aucs, policy.data, policy.gates.leakage)}
    assert set(findings) == {"summons_code", "processing_minutes"}
    code = findings["summons_code"]
    assert 0.95 < code.figure < 0.99 and code.limit == 0.9
    assert code.policy_key == "gates.leakage.max_single_feature_auc"
    assert code.message == (
        f"'summons_code' alone predicts 'released' with cross-validated ROC AUC {code.figure:.3f} > "
        "gates.leakage.max_single_feature_auc 0.90: a value recorded after the outcome leaks it; if so declare the "
        "column role: ignored in governance.yaml (data.columns.summons_code.role), else raise the limit"
    )


def test_presence_alone_is_caught(aucs):
    """A value present only for one class, drawn from one distribution: the missing indicator decides."""
    assert aucs["processing_minutes"] > 0.99


def test_honest_columns_are_not_flagged(aucs):
    assert abs(aucs["noise"] - 0.5) < 0.05 and abs(aucs["batch_code"] - 0.5) < 0.05
    # The real features of the default data are far below the limit.
    assert max(aucs[c] for c in ("age", "citizen", "employed", "checks")) < 0.75
    assert aucs["constant"] == 0.5


def test_limit_is_the_policys(aucs):
    policy = _policy(max_single_feature_auc=0.99)
    assert [f.column for f in auc_findings(aucs, policy.data, policy.gates.leakage)] == ["processing_minutes"]


def test_protected_feature_is_fixed_by_use_as_feature(aucs):
    policy = _policy()
    [finding] = auc_findings({"age": 0.95}, policy.data, policy.gates.leakage)
    assert "set data.columns.age.use_as_feature: false" in finding.message


def test_seeded_and_sampled_reproducibly(planted):
    policy = _policy(sample_rows=1000)
    spec, gate = policy.data, policy.gates.leakage
    first = single_feature_aucs(planted, spec, gate, policy.seed)
    assert single_feature_aucs(planted, spec, gate, policy.seed) == first
    other = single_feature_aucs(planted, spec, gate, policy.seed + 1)
    assert other != first  # a different sample and different folds
    assert other["summons_code"] > 0.9  # the leak is found on any sample


def test_one_class_is_not_evaluated(planted):
    policy = _policy()
    only_released = planted[planted["released"] == "Yes"]
    with pytest.raises(LeakageNotEvaluated, match="0 row"):
        single_feature_aucs(only_released, policy.data, policy.gates.leakage, policy.seed)


def test_constant_and_near_constant_features(planted):
    policy = _policy()
    shares = dominant_value_shares(planted, policy.data.feature_columns)
    assert shares["constant"] == 1.0
    assert shares["rare_flag"] == pytest.approx(1 - 27 / len(planted), abs=1e-4)
    assert shares["mostly_missing"] > 0.99  # a missing value counts as a value
    findings = {f.column: f for f in constant_findings(shares, policy.data, policy.gates.leakage)}
    assert set(findings) == {"constant", "rare_flag", "mostly_missing"}
    assert findings["constant"].message.startswith("'constant' is constant (one value in every row)")
    assert findings["rare_flag"].message.startswith(
        f"'rare_flag' is near-constant: its most frequent value covers {shares['rare_flag']:.2%} of the rows > "
        "gates.leakage.max_dominant_value_share 99.00%"
    )
    assert all(f.limit == 0.99 for f in findings.values())
    assert not any(MARKER in f.message or MARKER in str(f.as_record()) for f in findings.values())
    looser = _policy(max_dominant_value_share=0.999)
    assert [f.column for f in constant_findings(shares, looser.data, looser.gates.leakage)] == ["constant"]


def test_model_verdict():
    policy = _policy()
    spec, gate = policy.data, policy.gates.leakage
    honest = {"checks": 0.12, "employed": 0.036}
    assert model_findings("logistic_regression", 0.697, honest, spec, gate) == []
    findings = model_findings("gradient_boosting", 0.981, {"checks": 0.02, "summons_code": 0.45}, spec, gate)
    assert [(f.column, f.measure, f.figure, f.limit) for f in findings] == [
        ("summons_code", "permutation_importance", 0.45, 0.4)
    ]
    assert findings[0].message.startswith(
        "permuting 'summons_code' drops the holdout ROC AUC of candidate 'gradient_boosting' by 0.450 > "
        "gates.leakage.max_feature_importance 0.40"
    )
    [too_good] = model_findings("gradient_boosting", 0.995, honest, spec, gate)
    assert (too_good.measure, too_good.figure, too_good.limit) == ("holdout_roc_auc", 0.995, 0.99)
    assert "the strongest is 'checks'" in too_good.message
    with pytest.raises(LeakageNotEvaluated):
        model_findings("x", float("nan"), honest, spec, gate)
    with pytest.raises(LeakageNotEvaluated):
        model_findings("x", 0.7, {}, spec, gate)


def test_auc_drop_importance_finds_the_feature_a_model_rests_on():
    from sklearn.tree import DecisionTreeClassifier

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 600)
    x = pd.DataFrame({"leak": y + rng.normal(0, 0.1, 600), "noise": rng.normal(size=600)})
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(x, y)
    drops = auc_drop_importance(model, x, y, seed=1, max_rows=400)
    assert drops["leak"] > 0.4 and abs(drops["noise"]) < 0.02
    assert auc_drop_importance(model, x, y, seed=1, max_rows=400) == drops
