"""The asset groups read as the life cycle an auditor follows: data, model, evidence, release, production."""

import ast
from collections import Counter, defaultdict
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

import mlcomops_assets.assets
from mlcomops_assets.constants import AUDIT, DATA, EVIDENCE, MODEL, PRODUCTION, RELEASE
from mlcomops_assets.definitions import ALL_ASSETS, BATCH_ASSETS, build_defs
from mlcomops_assets_tests.conftest import write_home

LIFE_CYCLE = (DATA, MODEL, EVIDENCE, RELEASE, PRODUCTION, AUDIT)


@pytest.fixture(scope="module")
def specs(tmp_path_factory):
    defs = build_defs(write_home(tmp_path_factory.mktemp("lineage")))
    return list(defs.resolve_all_asset_specs())


def _group_edges(specs) -> set[tuple[str, str]]:
    """(upstream group, downstream group) for every dependency that crosses a group boundary."""
    group_of = {spec.key: spec.group_name for spec in specs}
    return {
        (group_of[dep.asset_key], spec.group_name)
        for spec in specs
        for dep in spec.deps
        if group_of[dep.asset_key] != spec.group_name
    }


def test_every_asset_is_in_a_life_cycle_group(specs):
    assert {spec.key.to_user_string(): spec.group_name for spec in specs if spec.group_name not in LIFE_CYCLE} == {}
    assert {spec.group_name for spec in specs} == set(LIFE_CYCLE)


def test_groups_depend_on_each_other_without_a_cycle(specs):
    edges = _group_edges(specs)
    graph = TopologicalSorter({group: set() for group in LIFE_CYCLE})
    for upstream, downstream in edges:
        graph.add(downstream, upstream)
    try:
        graph.prepare()
    except CycleError as exc:
        pytest.fail(f"the groups depend on each other in a cycle: {exc.args[1]}")
    # Stronger than acyclic: every dependency points forward along the life cycle.
    backwards = [(u, d) for u, d in edges if LIFE_CYCLE.index(u) > LIFE_CYCLE.index(d)]
    assert backwards == []


def test_no_group_holds_a_single_asset_except_release(specs):
    sizes = Counter(spec.group_name for spec in specs)
    assert sizes[RELEASE] == 1
    assert {group: n for group, n in sizes.items() if n < 2 and group != RELEASE} == {}


def test_each_asset_module_holds_one_group():
    groups = defaultdict(set)
    for asset in ALL_ASSETS + BATCH_ASSETS:
        groups[asset.op.compute_fn.decorated_fn.__module__] |= {spec.group_name for spec in asset.specs}
    assert {module: g for module, g in groups.items() if len(g) != 1} == {}


def test_asset_modules_never_import_each_other():
    """Shared helpers live outside assets/ (publish_gate.py, constants.py, lib/), so each module reads alone."""
    package = mlcomops_assets.assets.__name__
    imports = {}
    for path in Path(mlcomops_assets.assets.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text())
        names = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
        names += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
        found = [name for name in names if name == package or name.startswith(f"{package}.")]
        if found:
            imports[path.name] = found
    assert imports == {}
