"""Audit: the compliance matrix and one signed, hash-chained evidence bundle per registered model version.

Both run after a graph run whatever its outcome (the `audit` job, launched by `make run` and by the
audit sensor), so a version that was blocked at promotion is documented as well as one that was
promoted, and a tightened limit shows as a failed requirement in the matrix.
"""

import json
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import dagster as dg

from mlcomops_assets.constants import (
    AUDIT,
    AUDIT_BUNDLE,
    BATCH_MONITORING,
    CHAMPION_MODEL,
    COMPLIANCE_MATRIX,
    FAIRNESS_REPORT,
    HOLDOUT_DATA,
    MODEL_EVALUATION,
    MODEL_SELECTION_REPORT,
    OUTLIER_DETECTOR,
    PRODUCTION_DATA,
    SHAP_EXPLAINER,
    STORAGE_FOLDER,
    TRAINED_MODEL,
    TRAINING_DATA,
    VALIDATED_DATA,
)
from mlcomops_assets.lib import audit_bundle as ab
from mlcomops_assets.lib.files import file_sha256, write_atomic
from mlcomops_assets.metadata import table
from mlcomops_assets.resources import EvidenceCatalog, MlflowSession, ProjectResource
from mlcomops_assets.settings import REPOSITORY_ROOT, ProjectPaths

# Evidence JSON written by the assets of the registered version, by the name it gets in the bundle.
_VERSION_REPORTS = {
    "model_selection_report.json": MODEL_SELECTION_REPORT,
    "model_evaluation.json": MODEL_EVALUATION,
    "fairness_report.json": FAIRNESS_REPORT,
    "shap_explainer.json": SHAP_EXPLAINER,
}
_LOCKS = ("requirements/runtime.lock", "requirements/dvc.lock", "requirements/tools.lock", "pyproject.toml")


def _stored(paths: ProjectPaths, key: dg.AssetKey | str, suffix: str = ".json") -> Any:
    """Where the IO manager keeps a value: a file under ``data/``, or an object in the team profile's store
    (a ``UPath``), so the bundle holds the same evidence whichever profile produced it."""
    from mlcomops_assets.io_manager import stored_value

    return stored_value(paths.home, key if isinstance(key, str) else key.path[-1], suffix)


def _read_json(path: Any) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _source(paths: ProjectPaths, path: Any) -> str:
    """Where an item came from: its path below the home, or the object's URL (no credentials in it)."""
    return _rel(paths, path) if isinstance(path, Path) else str(path)


def _item(paths: ProjectPaths, name: str, kind: str, path: Any) -> ab.EvidenceItem:
    """A file as a bundle item; an object's bytes are read once here (the bundle hashes what it writes)."""
    if isinstance(path, Path):
        return ab.EvidenceItem(name, kind, _rel(paths, path), path=path)
    return ab.EvidenceItem(name, kind, str(path), content=path.read_bytes())


def _sha256_and_rows(path: Any) -> tuple[str, int]:
    """SHA-256 and row count of a stored Parquet value, read in one pass (file or object)."""
    import hashlib
    import io

    import pyarrow.parquet as pq

    if isinstance(path, Path):
        return file_sha256(path), pq.ParquetFile(path).metadata.num_rows
    data = path.read_bytes()
    return hashlib.sha256(data).hexdigest(), pq.ParquetFile(io.BytesIO(data)).metadata.num_rows


@dg.asset(
    key=COMPLIANCE_MATRIX,
    deps=[CHAMPION_MODEL, BATCH_MONITORING],
    group_name=AUDIT,
    kinds={"yaml"},
    code_version="1",
    tags={"compliance/personal_data": "none", "compliance/control": "compliance-matrix"},
)
def compliance_matrix(
    context: dg.AssetExecutionContext, project: ProjectResource, evidence_catalog: EvidenceCatalog
) -> dg.MaterializeResult:
    """Each requirement of the repository's list (DSK, BaFin, GDPR, EU AI Act) evaluated against the
    latest materializations and check results that evidence it: satisfied, waived (by whom, until
    when), failed, not evaluated, or not covered by the project (with the reason).

    Nothing is satisfied without an observation: an asset never materialized or a check never run
    makes its requirements "not evaluated". Written as JSON, Markdown and HTML below
    ``data/published/audit/`` and shown here as a table; each audit bundle carries a copy.
    """
    from mlcomops_assets.compliance_evidence import observe
    from mlcomops_assets.lib import compliance
    from mlcomops_assets.publication_mirror import mirror_publication

    requirements = compliance.load_requirements(project.paths.requirements_file)
    observations = observe(context.instance, evidence_catalog.ids, compliance.evidence_ids(requirements))
    rows = compliance.evaluate(requirements, observations)
    target = project.paths.published_audit_dir
    target.mkdir(parents=True, exist_ok=True)
    write_atomic(target / "compliance_matrix.json", lambda t: t.write_text(compliance.to_json(rows), encoding="utf-8"))
    write_atomic(
        target / "compliance_matrix.md", lambda t: t.write_text(compliance.to_markdown(rows), encoding="utf-8")
    )
    html = write_atomic(
        target / "compliance_matrix.html", lambda t: t.write_text(compliance.to_html(rows), encoding="utf-8")
    )
    counts = compliance.counts(rows)
    context.log.info("compliance matrix: " + ", ".join(f"{n} {status}" for status, n in counts.items()))
    # Team profile: the publication folder, complete for this cycle (nothing after this asset writes
    # into it), is mirrored to the object store: only what passes the row-level scan (publication_mirror).
    mirrored = mirror_publication(project.paths, project.policy().data.feature_columns)
    if mirrored is not None:
        context.log.info(f"publication mirrored to {mirrored.summary()}")
        for path, reason in mirrored.refused.items():
            context.log.warning(f"not mirrored: {path}: {reason}")
    return dg.MaterializeResult(
        metadata={
            **({"published_mirror": mirrored.summary()} if mirrored is not None else {}),
            **{f"requirements.{status.replace(' ', '_')}": n for status, n in counts.items()},
            "matrix": table(
                [
                    {
                        "id": r.id,
                        "framework": r.framework,
                        "reference": r.reference,
                        "title": r.title,
                        "status": str(r.status),
                        "detail": r.detail,
                    }
                    for r in rows
                ]
            ),
            "report": dg.MetadataValue.url(project.report_link(html)),
        }
    )


def _data_version(paths: ProjectPaths, model_record: dict) -> dict[str, Any]:
    """Hashes (never the rows) of the data the version was trained and evaluated on."""
    layers = {}
    for key in (VALIDATED_DATA, HOLDOUT_DATA, PRODUCTION_DATA, TRAINING_DATA):
        name = key.path[-1]
        path = _stored(paths, name, ".parquet")
        if path.is_file():
            digest, rows = _sha256_and_rows(path)
            # Named by its place below the home in both profiles (the object store keeps the layout).
            layers[f"data/{STORAGE_FOLDER[name]}/{name}.parquet"] = {"sha256": digest, "rows": rows}
    return {
        "raw_data_md5": model_record.get("raw_data_md5"),
        "raw_data_md5_note": "DVC's md5 of data/raw (dvc.lock), recorded by validated_data and the model",
        "layers": layers,
        "contract": _read_json(paths.validation_dir / "contract_verdict.json"),
    }


def _evidence_items(
    paths: ProjectPaths, model_record: dict, missing: list[str]
) -> tuple[list[ab.EvidenceItem], dict[str, Any]]:
    """Copies of the version's file evidence, and the loaded reports the documentation quotes.

    A report produced for another model version is left out and named in ``missing``: a bundle never
    attributes one version's evidence to another.
    """
    items: list[ab.EvidenceItem] = []
    loaded: dict[str, Any] = {}
    model_uri = model_record["model_uri"]
    rel = lambda p: p.relative_to(paths.home).as_posix()  # noqa: E731
    for name, key in _VERSION_REPORTS.items():
        path = _stored(paths, key)
        report = _read_json(path)
        if report is None:
            missing.append(f"{name} (never written)")
            continue
        about = report.get("chosen_model_uri") or report.get("model_uri")
        if key == MODEL_SELECTION_REPORT:
            about = report.get("chosen_run_id")
            matches = about == model_record.get("run_id")
        else:
            matches = about == model_uri
        if not matches:
            missing.append(f"{name} (the latest one is about {about}, not {model_uri})")
            continue
        items.append(_item(paths, name, "report", path))
        loaded[key.path[-1]] = report
    for extra in ("model_selection.html", "model_selection.md"):
        path = paths.published_dir / "selection" / extra
        if MODEL_SELECTION_REPORT.path[-1] in loaded and path.is_file():
            items.append(ab.EvidenceItem(extra, "report", rel(path), path=path))
    explain_dir = paths.published_dir / "reports" / "explainability"
    if SHAP_EXPLAINER.path[-1] in loaded and explain_dir.is_dir() and any(explain_dir.iterdir()):
        items.append(ab.EvidenceItem("explainability", "report", rel(explain_dir), path=explain_dir))
    outliers = _stored(paths, OUTLIER_DETECTOR)
    if outliers.is_file():
        loaded[OUTLIER_DETECTOR.path[-1]] = _read_json(outliers)
        items.append(_item(paths, "outlier_detector.json", "report", outliers))
    monitoring = []
    from mlcomops_assets.io_manager import stored_root, value_folder

    for path in sorted(value_folder(stored_root(paths.home), BATCH_MONITORING.path[-1]).glob("*.json"), key=str):
        batch = _read_json(path)
        monitoring.append(batch)
        items.append(_item(paths, f"batch_monitoring/{path.name}", "report", path))
        drift = paths.published_dir / "batch_reports" / f"drift-{path.stem}.html"
        if drift.is_file():
            items.append(ab.EvidenceItem(f"batch_reports/{drift.name}", "report", rel(drift), path=drift))
    loaded["monitoring"] = monitoring
    matrix = paths.published_audit_dir / "compliance_matrix.json"
    for suffix in (".json", ".html"):
        path = matrix.with_suffix(suffix)
        if path.is_file():
            items.append(ab.EvidenceItem(f"compliance_matrix{suffix}", "report", rel(path), path=path))
    loaded["compliance"] = _read_json(matrix)
    contract = paths.validation_dir / "contract_verdict.json"
    if contract.is_file():
        items.append(ab.EvidenceItem("contract_verdict.json", "validation", rel(contract), path=contract))
    if paths.data_docs_dir.is_dir():
        items.append(ab.EvidenceItem("data_docs", "validation", rel(paths.data_docs_dir), path=paths.data_docs_dir))
    else:
        missing.append("Data Docs (never built)")
    for name in ("governance.yaml", "params.yaml"):
        path = paths.home / name
        if path.is_file():
            items.append(ab.EvidenceItem(name, "policy", rel(path), path=path))
    for lock in _LOCKS:
        path = REPOSITORY_ROOT / lock
        if path.is_file():
            items.append(ab.EvidenceItem(lock, "lock", lock, path=path))
    dvc_lock = paths.home / "dvc.lock"
    if dvc_lock.is_file():
        items.append(ab.EvidenceItem("dvc.lock", "data_version", "dvc.lock", path=dvc_lock))
    return items, loaded


def _documentation(
    items: list[ab.EvidenceItem], loaded: dict[str, Any], meta: dict[str, Any], policy, extra: dict[str, Any]
) -> list[ab.EvidenceItem]:
    """The Annex IV technical documentation and the model card, generated from the evidence above; each
    figure links to the bundle item it comes from."""
    from mlcomops_assets.lib import technical_documentation as td

    compliance = loaded.get("compliance")
    evidence = td.Evidence(
        meta=meta,
        model_record=extra.get("model_record"),
        selection=loaded.get(MODEL_SELECTION_REPORT.path[-1]),
        evaluation=loaded.get(MODEL_EVALUATION.path[-1]),
        fairness=loaded.get(FAIRNESS_REPORT.path[-1]),
        explainer=loaded.get(SHAP_EXPLAINER.path[-1]),
        outlier_detector=loaded.get(OUTLIER_DETECTOR.path[-1]),
        monitoring=loaded.get("monitoring") or [],
        promotion=extra["verdict"],
        contract=(extra.get("data_version") or {}).get("contract"),
        data_version=extra.get("data_version"),
        policy=policy,
        compliance=compliance.get("rows", []) if isinstance(compliance, dict) else (compliance or []),
        sbom=extra.get("sbom"),
        locks=[i.name for i in items if i.kind == "lock"],
        links={item.name: f"{ab.ITEMS}/{item.kind}/{item.name}" for item in items},
    )
    return [
        ab.EvidenceItem(name, "documentation", "generated from the items of this bundle", content=text.encode())
        for name, text in td.render_documents(evidence).items()
    ]


def _previous_bundle(model_dir: Path, version: int) -> tuple[str | None, int | None]:
    """The manifest hash of the newest bundle below ``version`` (the chain's link) and its number."""
    earlier = [(n, folder) for n, folder in ab.version_dirs(model_dir) if n < version] if model_dir.is_dir() else []
    if not earlier:
        return None, None
    number, folder = earlier[-1]
    return ab.manifest_sha256(folder / ab.MANIFEST), number


@dg.asset(
    key=AUDIT_BUNDLE,
    deps=[COMPLIANCE_MATRIX, TRAINED_MODEL, CHAMPION_MODEL, BATCH_MONITORING],
    group_name=AUDIT,
    kinds={"json"},
    code_version="1",
    output_required=False,
    tags={"compliance/personal_data": "none", "compliance/control": "audit-evidence"},
)
def audit_bundle(context: dg.AssetExecutionContext, project: ProjectResource, mlflow_session: MlflowSession):
    """The evidence of the registered model version in one folder an auditor can verify offline:
    ``data/audit/<registered model>/v<version>/`` (and a zip beside it).

    It holds the raw data's DVC md5 and the validated and split data's SHA-256 (never rows), the
    policy and DVC params, the contract verdict and Data Docs, every candidate's MLflow run
    (parameters, metrics, artifact hashes), the selection report, the model artifact, evaluation,
    fairness with intervals, SHAP summary, batch monitoring and drift reports, the promotion verdict
    (also of a blocked version) and its signed record, the compliance matrix, the dependency locks, a
    CycloneDX SBOM, and the Annex IV documentation and model card generated from all of it. Its
    ``manifest.json`` lists each file's SHA-256, is signed with the promotion key (Ed25519) and records
    the hash of the previous version's manifest. Check it with ``mlcomops audit verify``.

    The bundle of the newest version is rebuilt when its evidence changes (a new monitored batch),
    recording the manifest it replaces; an older version's bundle is never rewritten, so the chain
    stays intact. Skipped when no version was registered yet.
    """
    from mlcomops_assets.audit_evidence import version_verdict
    from mlcomops_assets.lib import promotion_record as pr
    from mlcomops_assets.lib.sbom import build_sbom

    paths = project.paths
    model_record = _read_json(_stored(paths, TRAINED_MODEL))
    if model_record is None:
        context.log.info("no registered model version yet: no audit bundle")
        return
    policy = project.policy()
    name, version = model_record["registered_name"], str(model_record["version"])
    model_dir = paths.audit_dir / name
    newer = [n for n, _ in ab.version_dirs(model_dir) if n > int(version)] if model_dir.is_dir() else []
    if newer:
        raise dg.Failure(
            description=f"{name} v{version} is not the newest bundled version (v{max(newer)} exists): an older "
            "bundle is never rewritten, since the bundles after it chain to its manifest"
        )
    key = mlflow_session.signing_key(create=True)
    public_key = pr.public_key_hex(key)
    client = mlflow_session.client()
    # Versions registered after the newest bundle but before this one (two graph runs ended before an
    # audit ran): their files on disk were replaced, but the registry keeps what a bundle needs most.
    for skipped in _unbundled_before(client, name, model_dir, int(version)):
        _seal_registry_only(context, client, name, str(skipped), key, public_key, model_dir, policy)
    missing: list[str] = []
    items, loaded = _evidence_items(paths, model_record, missing)
    verdict = version_verdict(client, name, version, public_key)
    data_version = _data_version(paths, model_record)
    sbom = build_sbom(
        [REPOSITORY_ROOT / lock for lock in _LOCKS if lock.endswith(".lock")],
        "mlcomops_assets",
        model_record.get("git_commit", "unknown"),
        datetime.fromisoformat(model_record["trained_at"]),
        [("mlcomops:registered_model", name), ("mlcomops:version", version)],
    )
    items += [
        ab.EvidenceItem("data_version.json", "data_version", "validated and split data", content=_json(data_version)),
        _item(paths, "trained_model.json", "record", _stored(paths, TRAINED_MODEL)),
        ab.EvidenceItem("sbom.cdx.json", "sbom", "requirements/*.lock (CycloneDX 1.6)", content=sbom.encode()),
    ]
    published_record = paths.published_dir / "promotion" / f"{name}-v{version}.json"
    if published_record.is_file():
        items.append(
            ab.EvidenceItem(published_record.name, "record", _rel(paths, published_record), path=published_record)
        )
    run_ids = [c["run_id"] for c in (loaded.get(MODEL_SELECTION_REPORT.path[-1]) or {}).get("candidates", [])]
    meta = {
        "model_uri": model_record["model_uri"],
        "git_commit": model_record.get("git_commit", "unknown"),
        "policy_fingerprint": model_record.get("policy_fingerprint"),
        "policy_fingerprint_now": policy.fingerprint,
        "raw_data_md5": model_record.get("raw_data_md5"),
        "missing_evidence": missing,
    }
    extra = {
        "model_record": model_record,
        "data_version": data_version,
        "sbom": {"components": len(json.loads(sbom).get("components", []))},
    }
    bundle, previous = _seal(
        context,
        client,
        name,
        version,
        key,
        verdict,
        [*run_ids, model_record["run_id"]],
        items,
        loaded,
        meta,
        extra,
        model_dir,
        policy,
    )
    manifest = json.loads(bundle.manifest_path.read_text(encoding="utf-8"))
    documentation = bundle.folder / ab.ITEMS / "documentation"
    yield dg.MaterializeResult(
        metadata={
            "bundle": dg.MetadataValue.path(str(bundle.folder)),
            "zip": dg.MetadataValue.path(str(bundle.zip_path)),
            "annex_iv": dg.MetadataValue.path(str(documentation / "annex_iv.html")),
            "model_card": dg.MetadataValue.path(str(documentation / "model_card.html")),
            "manifest_sha256": bundle.manifest_sha256,
            "previous_version": f"v{previous}" if previous else "(first version)",
            "items": len(manifest["items"]),
            "model_version": f"{name} v{version}",
            "artifact_sha256": manifest["meta"]["artifact_sha256"],
            "promoted": bool(manifest["meta"]["promoted"]),
            "missing_evidence": "; ".join(manifest["meta"]["missing_evidence"]) or "(none)",
            "signing_public_key": manifest["public_key"],
            "verify_with": f"mlcomops audit verify {bundle.folder} --public-key {manifest['public_key']}",
        }
    )


def _unbundled_before(client, name: str, model_dir: Path, version: int) -> list[int]:
    """Registered versions after the newest bundle and before ``version``."""
    newest = max((n for n, _ in ab.version_dirs(model_dir)), default=0) if model_dir.is_dir() else 0
    registered = {int(v.version) for v in client.search_model_versions(f"name='{name}'")}
    return sorted(v for v in registered if newest < v < version)


def _seal_registry_only(context, client, name: str, version: str, key, public_key: str, model_dir: Path, policy):
    """The bundle of a version whose files were replaced before it was bundled: what the registry keeps
    (artifact, run, verdict), the rest named as missing, never borrowed from another version."""
    from mlcomops_assets.audit_evidence import version_verdict

    found = client.get_model_version(name, version)
    meta = {
        "model_uri": f"models:/{name}/{version}",
        "git_commit": (found.tags or {}).get("git.commit", "unknown"),
        "policy_fingerprint": (found.tags or {}).get("policy.fingerprint"),
        "policy_fingerprint_now": policy.fingerprint,
        "raw_data_md5": (found.tags or {}).get("data.raw_md5"),
        "missing_evidence": [
            "the version's data, reports, Data Docs and documentation inputs on disk were replaced by a later "
            "version before this version was bundled: the bundle holds what the registry keeps (artifact, run, "
            "verdict)"
        ],
    }
    verdict = version_verdict(client, name, version, public_key)
    _seal(context, client, name, version, key, verdict, [found.run_id], [], {}, meta, {}, model_dir, policy)
    context.log.warning(
        f"{name} v{version} was registered but not bundled before v{int(version) + 1}: bundled from the registry only"
    )


def _seal(
    context,
    client,
    name: str,
    version: str,
    key,
    verdict: dict,
    run_ids: list[str],
    items: list[ab.EvidenceItem],
    loaded: dict[str, Any],
    meta: dict[str, Any],
    extra: dict[str, Any],
    model_dir: Path,
    policy,
) -> tuple[ab.Bundle, int | None]:
    """Add the version's MLflow runs, artifact, verdict and documentation to ``items`` and write the bundle
    chained to the previous one (kept as it is when nothing changed); its bundle and the previous number."""
    from mlcomops_assets.audit_evidence import copy_model, export_run

    folder = model_dir / f"v{version}"
    items = [
        *items,
        ab.EvidenceItem("promotion_verdict.json", "record", f"models:/{name}/{version} tags", content=_json(verdict)),
    ]
    for run_id in dict.fromkeys(run_ids):
        exported = _json(export_run(client, run_id))
        items.append(ab.EvidenceItem(f"mlflow_run_{run_id}.json", "run", f"runs:/{run_id}", content=exported))
    with tempfile.TemporaryDirectory(prefix="mlcomops-audit-model-") as tmp:
        local, artifact_sha256 = copy_model(client, name, version, Path(tmp))
        signed = (verdict.get("promotion_record") or {}).get("artifact_sha256")
        if verdict["promoted"] and signed != artifact_sha256:
            raise dg.Failure(
                description=f"{name} v{version}: the registered artifact's SHA-256 {artifact_sha256[:12]}... differs "
                f"from the signed promotion record's {signed[:12]}...: the artifact changed since promotion; no "
                "bundle is made of it"
            )
        items.append(ab.EvidenceItem("model", "model", f"models:/{name}/{version}", path=local))
        previous_hash, previous_number = _previous_bundle(model_dir, int(version))
        meta = {
            "registered_model": name,
            "version": version,
            **meta,
            "artifact_sha256": artifact_sha256,
            "promoted": verdict["promoted"],
            "verdict": verdict["verdict"]
            or "not promoted: no promotion verdict was recorded (a blocking check stopped the run before "
            "promotion; the compliance matrix names it)",
            "previous_manifest_sha256": previous_hash,
        }
        items += _documentation(items, loaded, meta, policy, {**extra, "verdict": verdict})
        replaced = ab.manifest_sha256(folder / ab.MANIFEST) if folder.exists() else None
        if replaced is not None and _unchanged(folder, items):
            context.log.info(f"{name} v{version}: the evidence is unchanged since its bundle was made; kept as it is")
            return ab.Bundle(folder, folder / ab.MANIFEST, folder.with_name(folder.name + ".zip"), replaced), (
                previous_number
            )
        if replaced is not None:
            meta["replaces_manifest_sha256"] = replaced
        return ab.build_bundle(items, folder, previous_hash, key, meta, replace=replaced is not None), previous_number


def _unchanged(folder: Path, items: list[ab.EvidenceItem]) -> bool:
    """Whether the bundle in ``folder`` already holds exactly these items, byte for byte."""
    manifest = _read_json(folder / ab.MANIFEST) or {}
    recorded = {e["path"]: e["sha256"] for e in manifest.get("items", []) if e["kind"] != ab.INDEX_KIND}
    return recorded == ab.item_digests(items)


def _json(payload: Any) -> bytes:
    return (json.dumps(payload, indent=2, sort_keys=True, default=str) + "\n").encode()


def _rel(paths: ProjectPaths, path: Path) -> str:
    return path.relative_to(paths.home).as_posix()
