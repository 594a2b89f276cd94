"""The fast path of a decision: the same numbers as the scikit-learn pipeline, at a fraction of its cost.

Scoring one application through the champion's pipeline costs tens of milliseconds, almost all of it
scikit-learn's per-call overhead (input validation, pandas, joblib) rather than arithmetic: the
ColumnTransformer ran four times per decision (prediction, explained output, SHAP, outlier detector) and
the IsolationForest went through joblib for each of its 100 trees. Here each request is transformed once
per preprocessor and everything else is computed from that one array:

- ``CompiledColumns``: a fitted ``ColumnTransformer`` made of the steps the project's pipelines use
  (``SimpleImputer``, ``OneHotEncoder``, ``StandardScaler``, in ``Pipeline``s) replayed in numpy with
  the fitted statistics: the same operations on the same values, so the same bits;
- the final estimator is called on that array (a copy of it without ``feature_names_in_``, so numpy
  input is accepted as-is), under ``sklearn.config_context(assume_finite=True,
  skip_parameter_validation=True)`` (the schema already refused NaN and infinity);
- the SHAP explainer gets the same array (for a linear model its ``shap_values`` is
  ``(x - background mean) * coef``, exact and vectorized); the per-column sums replay pandas' grouped
  (Kahan-compensated) sum, and the additivity check runs for every row at once;
- ``CompiledForest``: the detector's IsolationForest scored tree by tree on float32 input, with the
  per-leaf path lengths added in the same order as scikit-learn does.

Nothing is trusted on faith: ``build_scorer`` compares the fast path with the reference path (the
pipeline itself, ``reference_scores``) on the verification rows — every allowed value and bound of every
column, a missing value where one is allowed, and real rows — value for value, bit for bit, one row at
a time and as a batch. A preprocessor with another step, a model or detector whose numbers differ in
any bit, keeps the reference path for that part, and ``/ready`` says which path is used and why.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlcomops_assets.policy import ColumnType, Policy

if TYPE_CHECKING:
    import numpy as np

    from mlcomops_assets.serving.explanations import ServedExplainer
    from mlcomops_assets.serving.outliers import OutlierWatch


class Unsupported(ValueError):
    """The fitted object holds a step or a setting the fast path does not replay."""


# --- the preprocessor -------------------------------------------------------------------------------


def _is_nan_marker(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _compile_step(step: Any) -> list[tuple]:
    """One fitted step as a list of operations on one column block (2-D float or object array)."""
    import numpy as np
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    if step is None or (isinstance(step, str) and step == "passthrough"):
        return []
    if isinstance(step, Pipeline):
        return [op for _, inner in step.steps for op in _compile_step(inner)]
    if type(step) is SimpleImputer:
        if step.add_indicator or not _is_nan_marker(step.missing_values):
            raise Unsupported("SimpleImputer with a missing indicator or another missing marker")
        stats = np.asarray(step.statistics_)
        if any(v is None or _is_nan_marker(v) for v in stats.tolist()):
            raise Unsupported("SimpleImputer with an empty column (its feature is dropped)")
        return [("impute", stats)]
    if type(step) is OneHotEncoder:
        if step.drop_idx_ is not None or getattr(step, "_infrequent_enabled", False):
            raise Unsupported("OneHotEncoder with drop or infrequent categories")
        if step.sparse_output or np.dtype(step.dtype) != np.float64:
            raise Unsupported("OneHotEncoder with sparse or non-float64 output")
        if step.handle_unknown not in ("ignore", "infrequent_if_exist"):
            raise Unsupported("OneHotEncoder that raises on unknown categories")
        lookups = []
        for categories in step.categories_:
            values = categories.tolist()
            if not all(isinstance(v, str) for v in values):
                raise Unsupported("OneHotEncoder with non-text categories")
            lookups.append({v: i for i, v in enumerate(values)})
        return [("onehot", lookups)]
    if type(step) is StandardScaler:
        return [("scale", step.mean_ if step.with_mean else None, step.scale_ if step.with_std else None)]
    raise Unsupported(f"no fast path for {type(step).__name__}")


def _run(ops: list[tuple], block: np.ndarray) -> np.ndarray:
    import numpy as np

    for op in ops:
        if op[0] == "impute":
            stats = op[1]
            if block.dtype == object:
                mask = np.frompyfunc(lambda v: v is None or _is_nan_marker(v), 1, 1)(block).astype(bool)
            else:
                mask = np.isnan(block)
            if mask.any():
                block = block.copy()
                rows, cols = np.nonzero(mask)
                block[rows, cols] = stats[cols]
        elif op[0] == "onehot":
            parts = []
            for j, lookup in enumerate(op[1]):
                out = np.zeros((block.shape[0], len(lookup)), dtype=np.float64)
                for i, value in enumerate(block[:, j].tolist()):
                    k = lookup.get(value)
                    if k is not None:  # an unknown category is all zeros (handle_unknown="ignore")
                        out[i, k] = 1.0
                parts.append(out)
            block = np.hstack(parts) if parts else np.zeros((block.shape[0], 0))
        else:  # scale: the same in-place operations as StandardScaler.transform
            block = np.array(block, dtype=np.float64)
            if op[1] is not None:
                block -= op[1]
            if op[2] is not None:
                block /= op[2]
    return block


@dataclass(frozen=True)
class CompiledColumns:
    """A fitted ColumnTransformer replayed in numpy: ``transform`` takes the rows as dicts."""

    blocks: tuple[tuple[tuple[str, ...], bool, list], ...]  # (columns, numeric, operations)
    names: tuple[str, ...]

    def transform(self, rows: list[dict[str, Any]]) -> np.ndarray:
        import numpy as np

        parts = []
        for columns, numeric, ops in self.blocks:
            if numeric:  # as application_frame: numbers as float64, a missing value as NaN
                block = np.array(
                    [[np.nan if r.get(c) is None else r[c] for c in columns] for r in rows], dtype=np.float64
                ).reshape(len(rows), len(columns))
            else:
                block = np.empty((len(rows), len(columns)), dtype=object)
                for i, r in enumerate(rows):
                    for j, c in enumerate(columns):
                        block[i, j] = r.get(c)
            parts.append(np.asarray(_run(ops, block), dtype=np.float64))
        # Column-major, as numpy sees the pipeline's pandas output.
        return np.asfortranarray(np.hstack(parts)) if parts else np.zeros((len(rows), 0), order="F")


def compile_columns(transformer: Any, policy: Policy) -> CompiledColumns:
    """``transformer``: a fitted ColumnTransformer over the policy's feature columns; raises ``Unsupported``."""
    from sklearn.compose import ColumnTransformer

    if type(transformer) is not ColumnTransformer:
        raise Unsupported(f"the preprocessor is a {type(transformer).__name__}, not a ColumnTransformer")
    spec = policy.data
    blocks = []
    for name, step, columns in transformer.transformers_:
        if isinstance(step, str) and step == "drop":
            continue
        if not isinstance(columns, list | tuple) or not all(isinstance(c, str) for c in columns):
            raise Unsupported(f"transformer {name!r} selects columns by something else than their names")
        if not columns:
            continue
        numeric = {spec.columns[c].is_numeric for c in columns if c in spec.columns}
        if len(numeric) != 1 or any(c not in spec.feature_columns for c in columns):
            raise Unsupported(f"transformer {name!r} mixes numeric and text columns or takes a non-feature")
        blocks.append((tuple(columns), numeric.pop(), _compile_step(step)))
    return CompiledColumns(tuple(blocks), tuple(str(n) for n in transformer.get_feature_names_out()))


# --- the outlier detector's forest --------------------------------------------------------------------


@dataclass(frozen=True)
class CompiledForest:
    """``IsolationForest.predict(X) == -1`` without joblib and validation, in scikit-learn's arithmetic."""

    trees: tuple[Any, ...]  # each tree's Cython ``tree_``
    features: tuple[Any, ...]  # each tree's feature subset, or None for all
    leaf_depths: tuple[Any, ...]  # per node: decision path length + average path length - 1
    denominator: Any
    offset: float

    def outliers(self, X: np.ndarray) -> np.ndarray:
        import numpy as np

        X32 = np.asarray(X, dtype=np.float32)
        depths = np.zeros(X32.shape[0], order="f")
        for tree, features, leaf_depth in zip(self.trees, self.features, self.leaf_depths, strict=True):
            leaves = tree.apply(X32 if features is None else np.ascontiguousarray(X32[:, features]))
            depths += leaf_depth[leaves]
        scores = 2 ** (-np.divide(depths, self.denominator, out=np.ones_like(depths), where=self.denominator != 0))
        return (-scores - self.offset) < 0


def compile_forest(forest: Any) -> CompiledForest:
    from sklearn.ensemble import IsolationForest
    from sklearn.ensemble._iforest import _average_path_length

    if type(forest) is not IsolationForest:
        raise Unsupported(f"the detector is a {type(forest).__name__}, not an IsolationForest")
    subsample = forest._max_features != forest.n_features_in_
    return CompiledForest(
        trees=tuple(e.tree_ for e in forest.estimators_),
        features=tuple(f if subsample else None for f in forest.estimators_features_),
        leaf_depths=tuple(
            d + a - 1.0
            for d, a in zip(forest._decision_path_lengths, forest._average_path_length_per_tree, strict=True)
        ),
        denominator=len(forest.estimators_) * _average_path_length([forest._max_samples]),
        offset=forest.offset_,
    )


# --- scoring ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scored:
    """Per application: the score (probability of the favourable outcome), the explained output, every
    input column's contribution (columns in the policy's order) and the outlier flag (None when off)."""

    scores: Any
    outputs: Any
    contributions: Any  # (rows, feature columns)
    flags: list[bool] | None


def _column_sums(values: np.ndarray, sources: list[str], columns: list[str]) -> np.ndarray:
    """Sum the transformed features' values per input column, as pandas' grouped sum does (Kahan-
    compensated, in the features' order); a column without transformed feature contributes 0."""
    import numpy as np

    out = np.zeros((values.shape[0], len(columns)))
    for k, column in enumerate(columns):
        total = np.zeros(values.shape[0])
        compensation = np.zeros(values.shape[0])
        for j, source in enumerate(sources):
            if source != column:
                continue
            y = values[:, j] - compensation
            t = total + y
            compensation = t - total - y
            compensation[np.isnan(compensation)] = 0.0  # pandas: an infinite value keeps its infinity
            total = t
        out[:, k] = total
    return out


def reference_scores(champion_model: Any, explainer: ServedExplainer, outliers: OutlierWatch, rows, policy) -> Scored:
    """The reference path: the fitted pipeline and the explainer on a pandas frame, as the pipeline's
    assets compute them (``lib.modeling``, ``lib.explain``)."""
    import numpy as np

    from mlcomops_assets.lib import explain
    from mlcomops_assets.lib.modeling import positive_scores
    from mlcomops_assets.serving.scoring import application_frame

    frame = application_frame(rows, policy)
    scores = positive_scores(champion_model, frame, policy)
    values = explain.shap_values(explainer.explainer, champion_model, frame, policy)
    columns = policy.data.feature_columns
    sources = [explain.source_feature(name, columns) for name in values.columns]
    by_column = values.T.groupby(sources, sort=False).sum().T
    contributions = np.column_stack(
        [by_column[c].to_numpy(dtype=float) if c in by_column.columns else np.zeros(len(frame)) for c in columns]
    )
    outputs = np.asarray(explain.explained_output(champion_model, frame, policy), dtype=float)
    return Scored(scores, outputs, contributions, outliers.flags(frame, policy))


@dataclass(frozen=True)
class Scorer:
    """Scores, explains and screens applications for one champion; ``status`` says which path is used."""

    model: Any
    explainer: ServedExplainer
    outliers: OutlierWatch
    policy: Policy
    columns: CompiledColumns | None = None
    estimator: Any = None  # the final estimator without feature names (numpy input)
    sources: list[str] = field(default_factory=list)
    detector_columns: CompiledColumns | None = None
    forest: CompiledForest | None = None
    status: dict = field(default_factory=dict)

    def score(self, rows: list[dict[str, Any]]) -> Scored:
        if self.columns is None:
            return reference_scores(self.model, self.explainer, self.outliers, rows, self.policy)
        import numpy as np
        import sklearn

        with sklearn.config_context(assume_finite=True, skip_parameter_validation=True):
            X = self.columns.transform(rows)
            scores = self.estimator.predict_proba(X)[:, 1]
            if self.explainer.scale == "log_odds":
                outputs = np.asarray(self.estimator.decision_function(X), dtype=float)
            else:
                outputs = scores
            values = np.asarray(self.explainer.explainer.shap_values(X))
            if values.ndim == 3:  # some explainers return one slice per class
                values = values[..., 1]
            contributions = _column_sums(values, self.sources, self.policy.data.feature_columns)
            flags = self._flags(rows)
        return Scored(scores, outputs, contributions, flags)

    def _flags(self, rows: list[dict[str, Any]]) -> list[bool] | None:
        if self.outliers.detector is None:
            return None
        if self.forest is None:
            from mlcomops_assets.serving.scoring import application_frame

            return self.outliers.flags(application_frame(rows, self.policy), self.policy)
        X = self.detector_columns.transform(rows)
        return [bool(v) for v in self.forest.outliers(X)]


def _same(a: Scored, b: Scored) -> str | None:
    import numpy as np

    for name in ("scores", "outputs", "contributions"):
        x = np.ascontiguousarray(getattr(a, name), dtype=float)
        y = np.ascontiguousarray(getattr(b, name), dtype=float)
        if x.shape != y.shape or not np.array_equal(x.view(np.int64), y.view(np.int64)):
            return f"{name} differ from the pipeline's"
    if a.flags != b.flags:
        return "outlier flags differ from the detector's"
    return None


def build_scorer(
    model: Any,
    explainer: ServedExplainer,
    outliers: OutlierWatch,
    policy: Policy,
    rows: list[dict[str, Any]],
    singles: int = 40,
) -> Scorer:
    """The fast path for this champion if it reproduces the reference path bit for bit on ``rows`` (all
    together, and the first ``singles`` one at a time), else the reference path; ``status`` says which
    and why."""
    from mlcomops_assets.lib import explain

    reference = Scorer(model, explainer, outliers, policy, status={"fast_path": False})
    try:
        if len(model) != 2 or (outliers.detector is not None and len(outliers.detector) != 2):
            raise Unsupported("a pipeline of other than one preprocessor and one estimator")
        columns = compile_columns(model[0], policy)
        estimator = copy.copy(model[-1])
        if hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
        sources = [explain.source_feature(name, policy.data.feature_columns) for name in columns.names]
        detector_columns = forest = None
        if outliers.detector is not None:
            detector_columns = compile_columns(outliers.detector[0], policy)
            forest = compile_forest(outliers.detector[-1])
    except (Unsupported, AttributeError, TypeError, KeyError, IndexError) as exc:
        return Scorer(**{**reference.__dict__, "status": {"fast_path": False, "reason": str(exc)}})
    fast = Scorer(
        model,
        explainer,
        outliers,
        policy,
        columns,
        estimator,
        sources,
        detector_columns,
        forest,
        {
            "fast_path": True,
            "checked_rows": len(rows),
            "checked_one_at_a_time": min(singles, len(rows)),
            "check": "identical to the pipeline bit for bit (scores, explained outputs, contributions, outlier "
            "flags) on the checked rows as one batch and one at a time",
        },
    )
    for batch in [rows, *([r] for r in rows[:singles])]:
        problem = _same(fast.score(batch), reference.score(batch))
        if problem:
            return Scorer(**{**reference.__dict__, "status": {"fast_path": False, "reason": problem}})
    return fast


def verification_rows(policy: Policy, sample: Any = None, limit: int = 200) -> list[dict[str, Any]]:
    """Rows covering every allowed value, both bounds and the middle of every feature column, a missing
    value where the policy allows one, and up to ``limit`` real rows of ``sample`` (a frame)."""
    import pandas as pd

    from mlcomops_assets.serving.scoring import warm_up_row

    base = warm_up_row(policy)
    rows = [base]
    for name in policy.data.feature_columns:
        column = policy.data.columns[name]
        values: list[Any] = list(column.allowed_values or [])
        if column.is_numeric:
            values += [v for v in (column.min, column.max) if v is not None]
            if column.dtype == ColumnType.INTEGER:
                values = [int(v) for v in values if float(v).is_integer()]
        if column.max_null_fraction > 0:
            values.append(None)
        rows += [{**base, name: v} for v in values]
    if sample is not None and len(sample):
        picked = sample.head(limit)
        for record in picked[policy.data.feature_columns].to_dict("records"):
            rows.append({k: None if (not isinstance(v, str) and pd.isna(v)) else _plain(v) for k, v in record.items()})
    return rows


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value
