"""Loading the code location imports Dagster and our own modules, none of the heavy libraries (issue 16).

The code server, `dg check defs`, every sensor tick's process and every run's process load the
definitions; the libraries that do the work (pandas, scikit-learn, MLflow, GX, Evidently, SHAP, ...)
belong inside the asset bodies, IO manager methods and lib functions that use them, so each step pays
only for its own. No timing here: `benchmarks/import_ratio.py` measures the cost against `import dagster`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mlcomops_assets_tests.conftest import REPO

# Top-level packages that loading the definitions must not import.
HEAVY = (
    "pandas",
    "numpy",
    "pyarrow",
    "sklearn",
    "scipy",
    "mlflow",
    "great_expectations",
    "evidently",
    "shap",
    "fairlearn",
    "skops",
    "matplotlib",
    "sqlalchemy",
    "fastapi",
)

# Runs in a fresh interpreter: a meta-path finder that only observes records, for the first import of
# each heavy package, the innermost frame of our code (modules named OURS...) on the stack, with its
# line, then lets the normal finders load it.
_PROBE = """
import json, linecache, sys

HEAVY = set(json.loads(sys.argv[1]))
TARGET, OURS = sys.argv[2], sys.argv[3]
importers = {}


class Recorder:
    def find_spec(self, name, path=None, target=None):
        top = name.partition(".")[0]
        if top in HEAVY and top not in importers:
            importers[top] = f"a dependency (no module of {OURS} on the stack)"
            frame = sys._getframe(1)
            while frame is not None:
                if frame.f_globals.get("__name__", "").startswith(OURS):
                    where = frame.f_code.co_filename
                    line = linecache.getline(where, frame.f_lineno).strip()
                    module = frame.f_globals["__name__"]
                    importers[top] = f"{module} (line {frame.f_lineno}: {line})"
                    break
                frame = frame.f_back
        return None


sys.meta_path.insert(0, Recorder())
__import__(TARGET)
print(json.dumps({"loaded": sorted(m for m in HEAVY if m in sys.modules), "importers": importers}))
"""


def _probe(module: str, ours: str = "mlcomops_assets", path: Path | None = None) -> dict:
    env = dict(os.environ)
    if path is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(path), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(HEAVY), module, ours],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_loading_the_definitions_imports_no_heavy_library():
    found = _probe("mlcomops_assets.definitions")
    offenders = [f"{name}, first imported by {found['importers'].get(name, '?')}" for name in found["loaded"]]
    assert not offenders, (
        "loading mlcomops_assets.definitions imported "
        + "; ".join(offenders)
        + ". Import these inside the functions that use them (asset bodies, IO manager methods, lib "
        "functions); annotations on asset parameters are evaluated at load time, so leave a DataFrame "
        "parameter unannotated (docs/performance.md)."
    )


def test_the_probe_names_the_module_that_imported_a_heavy_library(tmp_path):
    # Guards the diagnosis above: of the modules on the stack, ours that imported the library is named.
    (tmp_path / "probe_target").mkdir()
    (tmp_path / "probe_target" / "__init__.py").write_text("from probe_target import frames\n")
    (tmp_path / "probe_target" / "frames.py").write_text('"""Rows."""\n\nimport json\nimport numpy as np\n')
    found = _probe("probe_target", ours="probe_target", path=tmp_path)
    assert found["loaded"] == ["numpy"], found
    assert found["importers"] == {"numpy": "probe_target.frames (line 4: import numpy as np)"}, found
