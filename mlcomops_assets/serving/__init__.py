"""The scoring service (``mlcomops serve``): the verified champion behind an HTTP API on 127.0.0.1.

Small modules, heavy libraries imported inside functions so ``import mlcomops_assets.cli`` stays fast:

- ``settings``: where the decision log lives, which host the service may bind, the keys it needs;
- ``schema``: the request schema generated from the policy, and the 422 rules;
- ``champion``: the verified champion, reloaded and swapped without downtime when a new one is promoted;
- ``explanations``: the exact SHAP explainer rebuilt from the verified model, per-person reasons;
- ``outliers``: the outlier detector refitted from the training reference;
- ``metrics``: Prometheus metrics;
- ``app``: ``create_app``, the FastAPI application.

The decision log itself is ``lib/decision_log.py``. What a person can be told, and from which record:
docs/serving.md.
"""
