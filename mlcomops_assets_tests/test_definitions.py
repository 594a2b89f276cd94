"""The code location loads, string selections parse, and every asset spec matches the reviewed snapshot."""

import dagster as dg
import pytest

from mlcomops_assets.definitions import defs


def test_definitions_load():
    dg.Definitions.validate_loadable(defs)
    job = defs.resolve_job_def("end_to_end")
    assert job.name == "end_to_end"


# Dagster's own selection parser passes a Beta parameter (include_sources); nothing of ours does.
@pytest.mark.filterwarnings("ignore:Parameter `include_sources`:dagster.BetaWarning")
def test_string_selection_parses():
    # Guards against the ANTLR 4.9 runtime DVC drags in: every string selection then fails with
    # "TypeError: ord() expected string of length 1, but int found".
    from importlib.metadata import version

    assert version("antlr4-python3-runtime").startswith("4.13."), "Dagster's parser needs ANTLR 4.13"
    selection = dg.AssetSelection.from_string("key:raw_data+ or group:model")
    keys = selection.resolve(defs.resolve_asset_graph())
    assert dg.AssetKey("raw_data") in keys and dg.AssetKey("validated_data") in keys
    assert dg.AssetKey("trained_model") in keys


def _spec_snapshot() -> dict:
    specs = {}
    for spec in sorted(defs.resolve_all_asset_specs(), key=lambda s: s.key.to_user_string()):
        specs[spec.key.to_user_string()] = {
            "group": spec.group_name,
            "deps": sorted(d.asset_key.to_user_string() for d in spec.deps),
            "owners": list(spec.owners),
            "kinds": sorted(spec.kinds),
            "tags": {k: v for k, v in sorted(spec.tags.items()) if not k.startswith("dagster/kind/")},
            "code_version": spec.code_version,
            "automation": spec.automation_condition.get_label() if spec.automation_condition else None,
            "has_description": bool(spec.description),
        }
    checks = {}
    for check_key in sorted(
        defs.resolve_asset_graph().asset_check_keys, key=lambda k: (k.asset_key.to_user_string(), k.name)
    ):
        check = defs.resolve_asset_graph().get_check_spec(check_key)
        checks[f"{check_key.asset_key.to_user_string()}:{check_key.name}"] = {"blocking": check.blocking}
    return {"assets": specs, "checks": checks}


def test_asset_specs_match_snapshot(snapshot):
    """Any change of lineage, ownership, kinds, tags or checks shows up as a reviewable diff."""
    assert _spec_snapshot() == snapshot


def test_every_asset_and_check_is_documented():
    for spec in defs.resolve_all_asset_specs():
        assert spec.description and len(spec.description) > 40, spec.key
    graph = defs.resolve_asset_graph()
    for check_key in graph.asset_check_keys:
        assert graph.get_check_spec(check_key).description, check_key
