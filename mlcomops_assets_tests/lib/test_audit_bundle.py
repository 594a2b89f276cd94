"""Audit bundles hold up against tampering: a chain of three versions with real files of each kind
verifies untouched, and every change (a byte of any item, a removed or added file, a manifest in the
middle of the chain, a re-signature with another key) fails verification and names what changed."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
import shutil
import zipfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mlcomops_assets.lib import audit_bundle as ab
from mlcomops_assets.lib.promotion_record import default_key_file, load_private_key, public_key_hex
from mlcomops_assets_tests.conftest import REPO

MODEL = "credit_default"
# (item name, kind) of each kind of evidence the tests tamper with, and the generated index
TAMPERED = [
    ("model.skops", "model"),
    ("evaluation.json", "report"),
    ("governance.yaml", "policy"),
    ("validation_result.json", "validation"),
    ("raw.csv.dvc", "data_version"),
    ("uv.lock", "lock"),
    ("promotion_record.json", "record"),
    ("index.html", "index"),
]


@pytest.fixture(scope="module")
def key():
    """The session's test signing key (conftest points MLCOMOPS_SIGNING_KEY_FILE at a temp file)."""
    return load_private_key(default_key_file(), create=True)


def evidence(sources: Path, version: int) -> list[ab.EvidenceItem]:
    """Real files of each kind for one model version (the model is opaque bytes, like a skops file)."""
    sources.mkdir(parents=True, exist_ok=True)
    model = sources / "model.skops"
    model.write_bytes(b"PK\x03\x04" + random.Random(version).randbytes(2048))
    validation = {"success": True, "results": [{"expectation_type": "expect_column_to_exist", "success": True}]}
    (sources / "validation.json").write_text(json.dumps(validation))
    mlflow_model = sources / "mlflow_model"
    (mlflow_model / "artifacts").mkdir(parents=True, exist_ok=True)
    (mlflow_model / "MLmodel").write_text(f"flavors: {{}}\nrun_id: run{version}\n")
    (mlflow_model / "artifacts" / "conda.yaml").write_text("dependencies: []\n")
    report = {"accuracy": 0.8 + version / 100, "balanced_accuracy": 0.75, "version": version}
    record = {"registered_name": MODEL, "version": str(version), "verdict": "promoted"}
    return [
        ab.EvidenceItem("model.skops", "model", f"models:/{MODEL}/{version}", path=model),
        ab.EvidenceItem("mlflow_model", "model", f"runs:/run{version}/model", path=mlflow_model),
        ab.EvidenceItem(
            "evaluation.json", "report", "data/published/evaluation.json", content=json.dumps(report).encode()
        ),
        ab.EvidenceItem("governance.yaml", "policy", "governance.yaml", path=REPO / "governance.yaml"),
        ab.EvidenceItem(
            "validation_result.json", "validation", "data/validation/raw.json", path=sources / "validation.json"
        ),
        ab.EvidenceItem("raw.csv.dvc", "data_version", "DVC md5", content=f"md5: {version:032x}\n".encode()),
        ab.EvidenceItem("uv.lock", "lock", "uv.lock", content=b'version = 1\n[[package]]\nname = "dagster"\n'),
        ab.EvidenceItem(
            "promotion_record.json", "record", "MLflow model version tags", content=json.dumps(record).encode()
        ),
    ]


def meta(version: int) -> dict:
    return {
        "registered_model": MODEL,
        "version": version,
        "git_commit": f"{version:040x}",
        "policy_fingerprint": hashlib.sha256((REPO / "governance.yaml").read_bytes()).hexdigest(),
        "created_at": f"2025-01-0{version}T12:00:00+00:00",
    }


def build_chain(root: Path, key, versions: int = 3) -> list[ab.Bundle]:
    """``root/audit/<model>/v1..vN`` as the audit asset will lay them out (like ``data/audit/``), each
    chained to the one before; the evidence they copy lies in ``root/sources/``."""
    bundles: list[ab.Bundle] = []
    for version in range(1, versions + 1):
        previous = bundles[-1].manifest_sha256 if bundles else None
        items = evidence(root / "sources" / f"v{version}", version)
        bundles.append(ab.build_bundle(items, root / "audit" / MODEL / f"v{version}", previous, key, meta(version)))
    return bundles


@pytest.fixture
def chain(tmp_path: Path, key) -> list[ab.Bundle]:
    return build_chain(tmp_path, key)


def trusted(key) -> str:
    return public_key_hex(key)


def flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def not_ok(verification: ab.Verification) -> dict[str, str]:
    return {v.name: v.status for v in verification.failed_items}


def resign(folder: Path, other) -> None:
    """Re-sign a bundle's manifest with ``other``, as someone without the project's key would."""
    manifest = json.loads((folder / ab.MANIFEST).read_text())
    manifest.pop("signature")
    manifest["public_key"] = public_key_hex(other)
    manifest["signature"] = base64.b64encode(other.sign(ab.canonical(manifest))).decode()
    (folder / ab.MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def test_an_untouched_chain_verifies(chain: list[ab.Bundle], key) -> None:
    root = chain[0].folder.parent
    result = ab.verify_chain(root, trusted(key))
    assert result.ok, ab.report(result)
    assert [link.version for link in result.links] == ["v1", "v2", "v3"] and not result.broken_at
    assert [label for label, _ in result.bundles] == ["v1", "v1.zip", "v2", "v2.zip", "v3", "v3.zip"]
    for before, bundle in zip([None, *chain], chain, strict=False):
        verification = ab.verify_bundle(bundle.folder, trusted(key), previous=before.folder if before else None)
        assert verification.ok, ab.report(verification)
        assert verification.manifest_sha256 == bundle.manifest_sha256
    manifest = json.loads(chain[1].manifest_path.read_text())
    assert manifest["previous_manifest_sha256"] == chain[0].manifest_sha256
    assert manifest["meta"]["registered_model"] == MODEL and manifest["meta"]["version"] == "2"
    kinds = {entry["kind"] for entry in manifest["items"]}
    assert {"model", "report", "policy", "validation", "data_version", "lock", "record", "index"} == kinds
    paths = {entry["path"] for entry in manifest["items"]}
    assert "items/model/mlflow_model/artifacts/conda.yaml" in paths  # a folder item: one entry per file
    assert "items/policy/governance.yaml" in paths
    assert (chain[1].folder / "items/policy/governance.yaml").read_bytes() == (REPO / "governance.yaml").read_bytes()


@pytest.mark.parametrize(("name", "kind"), TAMPERED, ids=[kind for _, kind in TAMPERED])
def test_one_flipped_byte_in_any_item_fails_and_names_it(chain: list[ab.Bundle], key, name: str, kind: str) -> None:
    folder = chain[1].folder
    path = folder / "index.html" if kind == "index" else folder / "items" / kind / name
    flip_byte(path)

    verification = ab.verify_bundle(folder, trusted(key))
    assert not verification.ok
    assert not_ok(verification) == {name: ab.CHANGED}
    assert verification.signature_ok  # the manifest is intact: only the item changed
    result = ab.verify_chain(folder.parent, trusted(key))
    assert not result.ok and not result.broken_at  # the item fails, the manifests still chain
    assert f"CHANGED    {name} [{kind}]" in ab.report(result)


def test_a_removed_item_is_named_missing(chain: list[ab.Bundle], key) -> None:
    (chain[2].folder / "items/report/evaluation.json").unlink()
    verification = ab.verify_bundle(chain[2].folder, trusted(key))
    assert not verification.ok
    assert not_ok(verification) == {"evaluation.json": ab.MISSING}


def test_an_added_file_is_named_unlisted(chain: list[ab.Bundle], key) -> None:
    (chain[0].folder / "items/report/extra.json").write_text("{}")
    verification = ab.verify_bundle(chain[0].folder, trusted(key))
    assert not verification.ok
    assert not_ok(verification) == {"items/report/extra.json": ab.UNLISTED}


def test_a_changed_manifest_mid_chain_fails_its_signature_and_breaks_the_next_link(chain, key) -> None:
    manifest_path = chain[1].manifest_path
    manifest = json.loads(manifest_path.read_text())
    manifest["meta"]["git_commit"] = "f" * 40  # a plausible edit: the items still match their hashes
    manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")

    result = ab.verify_chain(chain[1].folder.parent, trusted(key))
    assert not result.ok
    assert result.broken_at == ["v3"]
    verdicts = dict(result.bundles)
    assert not verdicts["v2"].signature_ok and "changed after signing" in verdicts["v2"].signature_detail
    assert verdicts["v1"].ok and verdicts["v3"].ok  # the others are intact themselves
    assert "v2.zip holds another manifest than v2/" in result.problems  # the zip still has the signed one
    assert "link v2 -> v3 BROKEN" in ab.report(result)


def test_removing_a_version_breaks_the_chain_where_it_was(tmp_path: Path, key) -> None:
    chain = build_chain(tmp_path, key)
    shutil.rmtree(chain[1].folder)
    chain[1].zip_path.unlink()
    assert ab.verify_chain(chain[0].folder.parent, trusted(key)).broken_at == ["v3"]
    shutil.rmtree(chain[0].folder)
    chain[0].zip_path.unlink()
    assert ab.verify_chain(chain[0].folder.parent, trusted(key)).broken_at == ["v3"]  # v3 is now first


def test_a_bundle_re_signed_with_another_key_is_refused_by_the_trusted_key(chain, key) -> None:
    folder = chain[0].folder
    flip_byte(folder / "items/report/evaluation.json")
    manifest = json.loads((folder / ab.MANIFEST).read_text())
    for entry in manifest["items"]:  # a forger updates the hash of what they changed, then re-signs
        if entry["name"] == "evaluation.json":
            entry["sha256"] = hashlib.sha256((folder / entry["path"]).read_bytes()).hexdigest()
    (folder / ab.MANIFEST).write_text(json.dumps(manifest))
    resign(folder, Ed25519PrivateKey.generate())

    # Against only the key it carries, the forgery is consistent: why an auditor passes a trusted key.
    assert ab.verify_bundle(folder).ok
    refused = ab.verify_bundle(folder, trusted(key))
    assert not refused.ok and not refused.signature_ok and not refused.failed_items
    assert refused.signature_detail.startswith("refused: signed by key")
    assert ab.verify_chain(folder.parent, trusted(key)).broken_at == ["v2"]


def test_the_zip_verifies_the_same_as_the_folder(chain: list[ab.Bundle], key, tmp_path: Path) -> None:
    bundle = chain[2]
    folder_verdicts = ab.verify_bundle(bundle.folder, trusted(key))
    zip_verdicts = ab.verify_bundle(bundle.zip_path, trusted(key), previous=chain[1].manifest_sha256)
    assert zip_verdicts.ok and zip_verdicts.chain_ok, ab.report(zip_verdicts)
    assert [(v.name, v.status) for v in zip_verdicts.items] == [(v.name, v.status) for v in folder_verdicts.items]
    with zipfile.ZipFile(bundle.zip_path) as zf:
        names = zf.namelist()
        assert names == sorted(names) and all(n.startswith("v3/") for n in names)
        assert {info.date_time for info in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    again = tmp_path / "again.zip"
    ab.write_zip(bundle.folder, again, bundle.folder.name)
    assert again.read_bytes() == bundle.zip_path.read_bytes()  # deterministic

    tampered = tmp_path / "tampered.zip"  # the same zip with one byte of the model changed
    with zipfile.ZipFile(bundle.zip_path) as source, zipfile.ZipFile(tampered, "w") as target:
        for info in source.infolist():
            data = bytearray(source.read(info))
            if info.filename == "v3/items/model/model.skops":
                data[100] ^= 0x01
            target.writestr(info, bytes(data))
    verification = ab.verify_bundle(tampered, trusted(key))
    assert not verification.ok and not_ok(verification) == {"model.skops": ab.CHANGED}

    damaged = tmp_path / "damaged.zip"  # one byte flipped in the zip file itself, inside the model's data
    data = bytearray(bundle.zip_path.read_bytes())
    with zipfile.ZipFile(bundle.zip_path) as zf:
        info = zf.getinfo("v3/items/model/model.skops")
    local = info.header_offset  # local header: 30 bytes, then the name and extra field, then the data
    start = (
        local
        + 30
        + int.from_bytes(data[local + 26 : local + 28], "little")
        + int.from_bytes(data[local + 28 : local + 30], "little")
    )
    data[start + info.compress_size // 2] ^= 0x01
    damaged.write_bytes(bytes(data))
    verification = ab.verify_bundle(damaged, trusted(key))
    assert not verification.ok and not_ok(verification) == {"model.skops": ab.CHANGED}

    smuggled = tmp_path / "smuggled.zip"  # an entry beside the bundle's folder in the zip
    shutil.copy(bundle.zip_path, smuggled)
    with zipfile.ZipFile(smuggled, "a") as zf:
        zf.writestr("items/model/model.skops", b"not the model")
    verification = ab.verify_bundle(smuggled, trusted(key))
    assert not verification.ok and not_ok(verification) == {"items/model/model.skops": ab.UNLISTED}


def test_the_index_is_self_contained(chain: list[ab.Bundle]) -> None:
    folder = chain[0].folder
    page = (folder / "index.html").read_text()
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page and "default-src 'none'" in page
    links = re.findall(r'(?:href|src)="([^"]*)"', page)
    manifest = json.loads((folder / ab.MANIFEST).read_text())
    assert len(links) == len(manifest["items"])  # every item but the index itself, plus manifest.json
    for link in links:
        assert (folder / link).is_file(), link
    assert "mlflow_model/MLmodel" in page


def test_verification_reports_broken_input_instead_of_raising(chain: list[ab.Bundle], key, tmp_path: Path) -> None:
    folder = chain[0].folder
    manifest = json.loads((folder / ab.MANIFEST).read_text())
    manifest["items"][0]["path"] = "../../../etc/passwd"
    (folder / ab.MANIFEST).write_text(json.dumps(manifest))
    escaped = ab.verify_bundle(folder, trusted(key))
    assert not escaped.ok and any("leaves the bundle" in v.detail for v in escaped.failed_items)

    (folder / ab.MANIFEST).write_bytes(b"{not json")
    assert ab.verify_bundle(folder).problems[0].startswith("manifest.json cannot be read")
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(chain[1].zip_path.read_bytes()[:300])
    assert not ab.verify_bundle(truncated).ok
    assert not ab.verify_bundle(tmp_path / "nowhere").ok
    assert ab.verify_chain(tmp_path / "nowhere").problems


def test_build_refuses_ambiguous_evidence(tmp_path: Path, key) -> None:
    report = ab.EvidenceItem("a.json", "report", "x", content=b"{}")
    with pytest.raises(ab.BundleError, match="named 'a.json'"):
        ab.build_bundle(
            [report, ab.EvidenceItem("a.json", "record", "y", content=b"{}")], tmp_path / "v1", None, key, meta(1)
        )
    with pytest.raises(ab.BundleError, match="not a plain relative name"):
        ab.build_bundle([ab.EvidenceItem("../a", "report", "x", content=b"")], tmp_path / "v1", None, key, meta(1))
    with pytest.raises(ab.BundleError, match="kind 'index'"):
        ab.build_bundle([ab.EvidenceItem("a", "index", "x", content=b"")], tmp_path / "v1", None, key, meta(1))
    with pytest.raises(ab.BundleError, match="lacks version"):
        ab.build_bundle([report], tmp_path / "v1", None, key, {"registered_model": MODEL})
    assert not (tmp_path / "v1").exists()
    ab.build_bundle([report], tmp_path / "v1", None, key, meta(1))
    with pytest.raises(ab.BundleError, match="already exists"):
        ab.build_bundle([report], tmp_path / "v1", None, key, meta(1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v1", "v1.zip"]  # no staging folder left behind


def test_a_trusted_key_is_read_in_every_usual_form(key, tmp_path: Path) -> None:
    expected = public_key_hex(key)
    raw = bytes.fromhex(expected)
    pem_public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "public.pem").write_bytes(pem_public)
    (tmp_path / "public.hex").write_text(expected + "\n")
    forms = [
        expected,
        base64.b64encode(raw).decode(),
        str(default_key_file()),
        str(tmp_path / "public.pem"),
        str(tmp_path / "public.hex"),
    ]
    assert {ab.parse_public_key(form) for form in forms} == {expected}
    with pytest.raises(ValueError):
        ab.parse_public_key("not a key")
