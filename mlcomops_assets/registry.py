"""Loading the champion from the MLflow registry only as the pipeline promoted it: signed record, same
version, same bytes.

Used by everything that acts on the champion (batch scoring, monitoring, the comparison at the next
promotion, the ``champion`` command). The model is downloaded into a private temporary folder, hashed
there and loaded from there, so the bytes that were checked are the bytes that run. It talks to MLflow,
so it lives outside ``lib/``; the record itself (signing, verifying, hashing) is ``lib.promotion_record``.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlcomops_assets.lib.promotion_record import (
    ChampionIntegrityError,
    PromotionRecord,
    record_of,
    tree_sha256,
)

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

CHAMPION_ALIAS = "champion"


@dataclass(frozen=True)
class VerifiedModel:
    """A model version whose promotion record and artifact were checked, and the model loaded from it."""

    name: str
    version: str
    record: PromotionRecord
    model: Any


def latest_promotion(client: MlflowClient, name: str, public_key: str) -> PromotionRecord | None:
    """The newest validly signed promotion (or restore) among all versions of ``name``."""
    records = []
    for found in client.search_model_versions(f"name='{name}'"):
        record = record_of(found.tags or {}, public_key)
        if record is not None and record.registered_name == name and record.version == str(found.version):
            records.append(record)
    return max(records, key=lambda r: r.decided_at, default=None)


def download_and_hash(client: MlflowClient, name: str, version: str, target: Path) -> tuple[Path, str]:
    """The version's model artifact copied into ``target`` and its tree SHA-256."""
    import mlflow

    source = client.get_model_version_download_uri(name, version)  # local path or object-store URI
    local = mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=str(target))
    return Path(local), tree_sha256(Path(local))


def load_verified(client: MlflowClient, name: str, version: str, public_key: str) -> VerifiedModel:
    """Load ``name`` v``version`` if it carries a valid promotion record and its artifact is unchanged."""
    import mlflow

    found = client.get_model_version(name, version)
    tags = found.tags or {}
    record = record_of(tags, public_key)
    if record is None:
        reason = (
            "carries no signed promotion record (it was never promoted by the pipeline)"
            if "promotion.record" not in tags
            else "carries a promotion record whose signature does not verify with the project's key"
        )
        raise ChampionIntegrityError(f"{name} v{version} {reason}")
    if record.registered_name != name or record.version != str(version):
        raise ChampionIntegrityError(
            f"{name} v{version} carries the promotion record of {record.registered_name} v{record.version}"
        )
    with tempfile.TemporaryDirectory(prefix="mlcomops-verify-") as tmp:
        local, digest = download_and_hash(client, name, str(version), Path(tmp))
        if digest != record.artifact_sha256:
            raise ChampionIntegrityError(
                f"{name} v{version}: the model artifact changed since promotion (SHA-256 {digest[:12]}... "
                f"instead of the signed {record.artifact_sha256[:12]}...)"
            )
        model = mlflow.sklearn.load_model(str(local))
    return VerifiedModel(name, str(version), record, model)


def verified_champion(client: MlflowClient, name: str, public_key: str) -> VerifiedModel:
    """The champion, refused unless the alias points at the version the pipeline promoted last, with
    a valid record and an unchanged artifact. The message names the version and what failed."""
    from mlflow.exceptions import MlflowException

    try:
        version = str(client.get_model_version_by_alias(name, CHAMPION_ALIAS).version)
    except MlflowException:
        raise ChampionIntegrityError(f"{name} has no champion") from None
    latest = latest_promotion(client, name, public_key)
    restore = (
        f" The last version the pipeline promoted is v{latest.version}; to go back to it, run "
        f"`python -m mlcomops_assets.champion restore --version {latest.version} --reason ...`."
        if latest is not None
        else ""
    )
    try:
        verified = load_verified(client, name, version, public_key)
    except ChampionIntegrityError as exc:
        raise ChampionIntegrityError(f"refusing the champion alias of {name}: {exc}.{restore}") from None
    if latest is not None and latest.version != version:
        raise ChampionIntegrityError(
            f"refusing the champion alias of {name}: it points at v{version}, but the pipeline's last promotion "
            f"({latest.decided_at}) made v{latest.version} champion; the alias was moved outside the pipeline.{restore}"
        )
    return verified
