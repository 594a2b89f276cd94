"""The CycloneDX SBOM: every locked package with its hashes, schema-valid, reproducible."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mlcomops_assets.lib.sbom import LockFileError, build_sbom, locked_packages, parse_lock
from mlcomops_assets.settings import REPOSITORY_ROOT

LOCK = """\
alpha-pkg==1.2.0 \\
    --hash=sha256:{a1} \\
    --hash=sha256:{a2}
    # via beta
Beta_Pkg[extra]==0.9 \\
    --hash=sha256:{b1}
"""
HEX = {k: (c * 64) for k, c in {"a1": "a", "a2": "b", "b1": "c"}.items()}
WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_lock_lines_give_names_versions_and_every_hash():
    packages = parse_lock(LOCK.format(**HEX))
    assert [(p.name, p.version) for p in packages] == [("alpha-pkg", "1.2.0"), ("beta-pkg", "0.9")]
    assert packages[0].hashes == [HEX["a1"], HEX["a2"]]
    assert packages[1].hashes == [HEX["b1"]]


def test_a_package_in_two_locks_is_one_component_naming_both(tmp_path):
    first = _write(tmp_path, "runtime.lock", LOCK.format(**HEX))
    second = _write(tmp_path, "dvc.lock", f"alpha-pkg==1.2.0 \\\n    --hash=sha256:{'d' * 64}\n")
    (alpha, beta) = locked_packages([first, second])
    assert alpha.locks == ["runtime.lock", "dvc.lock"]
    assert alpha.hashes == sorted([HEX["a1"], HEX["a2"], "d" * 64])
    assert beta.locks == ["runtime.lock"]


def test_a_file_without_pins_is_refused(tmp_path):
    with pytest.raises(LockFileError, match="notes.txt"):
        locked_packages([_write(tmp_path, "notes.txt", "just text\n")])


def test_sbom_is_valid_cyclonedx_and_reproducible(tmp_path):
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    lock = _write(tmp_path, "runtime.lock", LOCK.format(**HEX))
    text = build_sbom([lock], "mlcomops_assets", "abc123", WHEN, [("mlcomops:version", "3")])
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(text) is None
    document = json.loads(text)
    assert document["specVersion"] == "1.6"
    assert document["metadata"]["timestamp"].startswith("2026-01-02T03:04:05")
    assert document["metadata"]["component"]["version"] == "abc123"
    by_purl = {c["purl"]: c for c in document["components"]}
    assert set(by_purl) == {"pkg:pypi/alpha-pkg@1.2.0", "pkg:pypi/beta-pkg@0.9"}
    assert {h["content"] for h in by_purl["pkg:pypi/alpha-pkg@1.2.0"]["hashes"]} == {HEX["a1"], HEX["a2"]}
    assert text == build_sbom([lock], "mlcomops_assets", "abc123", WHEN, [("mlcomops:version", "3")])
    lock.write_text(LOCK.format(**HEX).replace("0.9", "1.0"))
    changed = json.loads(build_sbom([lock], "mlcomops_assets", "abc123", WHEN))
    assert changed["serialNumber"] != document["serialNumber"]


def test_the_repository_locks_are_all_in_the_sbom():
    locks = sorted((REPOSITORY_ROOT / "requirements").glob("*.lock"))
    document = json.loads(build_sbom(locks, "mlcomops_assets", "head", WHEN))
    purls = {c["purl"] for c in document["components"]}
    for name in ("dagster", "mlflow", "great-expectations", "dvc", "uv"):
        assert any(p.startswith(f"pkg:pypi/{name}@") for p in purls), name
    assert all(c["hashes"] for c in document["components"])
