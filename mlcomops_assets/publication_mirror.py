"""Team profile: the publication folder's copy on the object store, ``<object store>/published/``.

Called once per audit run, at the end of ``compliance_matrix`` (the last asset that writes into the
publication folder; the audit runs after every graph and batch run, launched by ``make run`` and by
the audit sensor), so a team reads the same evidence from the object store as from the report server.
What may leave is decided by ``lib.publication.mirror``: the files the report server would serve, each
scanned for rows of the data layers before its upload. The local profile mirrors nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mlcomops_assets.constants import (
    HOLDOUT_DATA,
    PRODUCTION_BATCH,
    PRODUCTION_DATA,
    TRAINING_DATA,
    VALIDATED_DATA,
)
from mlcomops_assets.profile import Profile, load_profile
from mlcomops_assets.settings import ProjectPaths

if TYPE_CHECKING:
    from mlcomops_assets.lib.evidence_scan import RowIndex
    from mlcomops_assets.lib.publication import MirrorResult

PUBLISHED_PREFIX = "published"
# The data layers whose rows must never be published: the validated data, its splits and every
# validated production batch (one Parquet per partition).
REFERENCE_ASSETS = (VALIDATED_DATA, TRAINING_DATA, HOLDOUT_DATA, PRODUCTION_DATA)
PARTITIONED_REFERENCE = PRODUCTION_BATCH


def _store_path(url: str, profile: Profile) -> Any:
    from upath import UPath

    # Listings are never cached: the mirror compares against what the store holds now.
    return UPath(url, use_listings_cache=False, **profile.storage_options())


def mirror_target(profile: Profile) -> Any | None:
    """``<object store>/published`` as a UPath, or None in the local profile."""
    if not profile.is_team:
        return None
    return _store_path(f"{profile.object_store_url}/{PUBLISHED_PREFIX}", profile)


def reference_index(data_root: Any, feature_columns: list[str]) -> RowIndex | None:
    """The rows of every data layer present below ``data_root`` (the home's ``data/`` or the object
    store's ``data/``, the IO managers' layout), or None when none is there yet."""
    from mlcomops_assets.io_manager import read_parquet, value_folder
    from mlcomops_assets.lib.evidence_scan import RowIndex

    files = []
    for key in REFERENCE_ASSETS:
        folder = value_folder(data_root, key.path[-1])
        files.append(folder.with_name(folder.name + ".parquet"))
    batches = value_folder(data_root, PARTITIONED_REFERENCE.path[-1])
    if batches.is_dir():
        files += sorted(p for p in batches.iterdir() if p.name.endswith(".parquet"))
    frames = [read_parquet(path) for path in files if path.exists()]
    return RowIndex(frames, key_columns=feature_columns) if frames else None


def _no_reference(path: Any, data: bytes) -> list[str]:
    return ["no data layer to scan against yet, so nothing can be shown to be aggregate"]


def mirror_publication(
    paths: ProjectPaths, feature_columns: list[str], profile: Profile | None = None
) -> MirrorResult | None:
    """Mirror ``paths.published_dir`` to the team's object store; None in the local profile.

    Without any data layer to compare with, every file is refused (the scan cannot vouch for it)."""
    from mlcomops_assets.lib.publication import mirror, row_scan

    profile = profile or load_profile()
    target = mirror_target(profile)
    if target is None:
        return None
    index = reference_index(_store_path(profile.data_url(), profile), feature_columns)
    return mirror(paths.published_dir, target, row_scan(index) if index is not None else _no_reference)
