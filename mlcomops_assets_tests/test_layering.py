"""The layering contracts of pyproject.toml hold, checked by `lint-imports` as `make lint` runs it.

`make test` lints first, but pytest run on its own (an IDE, a subset) should still catch an import
that breaks the layering: lib/ without Dagster or MLflow, asset modules independent of each other.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from mlcomops_assets_tests.conftest import REPO

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _contracts() -> dict[str, dict]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {contract["id"]: contract for contract in config["contracts"]}


def test_contracts_state_the_layering_rule():
    # Guards against a contract quietly weakened to pass: it must still forbid what the rule forbids.
    contracts = _contracts()
    lib = contracts["lib-is-domain-logic"]
    assert lib["type"] == "forbidden" and lib["source_modules"] == ["mlcomops_assets.lib"]
    assert {"dagster", "mlflow", "mlcomops_assets.assets", "mlcomops_assets.resources"} <= set(lib["forbidden_modules"])
    assert "mlcomops_assets.definitions" in lib["forbidden_modules"]
    assert not lib.get("ignore_imports") and not lib.get("allow_indirect_imports")
    assets = contracts["asset-modules-independent"]
    assert assets["type"] == "independence" and assets["modules"] == ["mlcomops_assets.assets.*"]
    assert not assets.get("ignore_imports")


def test_lint_imports_keeps_every_contract():
    # No cache: the check reads the tree as it is and leaves nothing behind in the repository.
    result = subprocess.run(
        [str(LINT_IMPORTS), "--no-logo", "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    for contract in _contracts().values():
        assert f"{contract['name']} KEPT" in output, output
    assert "Contracts: 2 kept, 0 broken." in output, output
