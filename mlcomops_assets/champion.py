"""Check or restore the champion from the command line, the only way besides promotion to move it.

    python -m mlcomops_assets.champion verify
    python -m mlcomops_assets.champion restore --version 3 --reason "v4 misbehaves in production"

``verify`` runs the check every consumer runs (signed record, last promotion, artifact hash) and
exits 1 with the reason when it fails. ``restore`` moves the alias back to a version the pipeline
promoted before, after verifying that version's record and artifact, and signs a new record of kind
``restore`` that keeps the original verdict and the reason; a version never promoted cannot be restored.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import tempfile
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from mlcomops_assets.lib import promotion_record as pr
from mlcomops_assets.lib.files import write_json
from mlcomops_assets.policy import PolicyError, load_policy, report_policy_error
from mlcomops_assets.registry import CHAMPION_ALIAS, download_and_hash, load_verified, verified_champion
from mlcomops_assets.settings import ProjectPaths, default_home


def _client(paths: ProjectPaths):
    from mlcomops_assets.profile import mlflow_client

    # The profile's store; in a copied project the artifact hash must be taken from its own copy
    # (profile.activate_mlflow, lib.mlflow_store).
    return mlflow_client(paths)


def verify(paths: ProjectPaths) -> str:
    """A one-line description of the verified champion; raises ``ChampionIntegrityError``."""
    name = load_policy(paths.policy_file).model.registered_name
    key = pr.load_private_key(pr.default_key_file())
    champion = verified_champion(_client(paths), name, pr.public_key_hex(key))
    return (
        f"{name} v{champion.version}: signed {champion.record.kind} record of {champion.record.decided_at} verifies, "
        f"artifact SHA-256 {champion.record.artifact_sha256} matches"
    )


def restore(paths: ProjectPaths, version: str, reason: str, who: str | None = None) -> pr.PromotionRecord:
    """Make ``version`` champion again if the pipeline promoted it before and its artifact is unchanged."""
    name = load_policy(paths.policy_file).model.registered_name
    key = pr.load_private_key(pr.default_key_file())
    public = pr.public_key_hex(key)
    client = _client(paths)
    verified = load_verified(client, name, str(version), public)  # refuses a version never promoted
    try:
        previous = str(client.get_model_version_by_alias(name, CHAMPION_ALIAS).version)
    except Exception:  # noqa: BLE001 (no alias at all: nothing to replace)
        previous = None
    with tempfile.TemporaryDirectory(prefix="mlcomops-restore-") as tmp:
        _, artifact = download_and_hash(client, name, str(version), Path(tmp))
    original = verified.record
    record = replace(
        original,
        artifact_sha256=artifact,
        verdict=f"restored by {who or getpass.getuser()}: {reason}"[:1000],
        decided_at=datetime.now(UTC).isoformat(timespec="microseconds"),
        dagster_run_id="",
        previous_champion=previous,
        kind="restore",
        extra={"original_decided_at": original.decided_at, "original_verdict": original.verdict},
    )
    signature = pr.sign(record, key)
    client.set_model_version_tag(name, str(version), pr.RECORD_TAG, record.canonical().decode())
    client.set_model_version_tag(name, str(version), pr.SIGNATURE_TAG, signature)
    write_json(
        paths.published_dir / "promotion" / f"{name}-v{version}.json",
        {"record": json.loads(record.canonical()), "signature": signature, "algorithm": "Ed25519"},
    )
    client.set_registered_model_alias(name, CHAMPION_ALIAS, str(version))
    return record


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("verify", help="check the champion as every consumer does")
    restoring = commands.add_parser("restore", help="make an earlier promoted version champion again")
    restoring.add_argument("--version", required=True)
    restoring.add_argument("--reason", required=True, help="recorded in the signed restore record")
    args = parser.parse_args(argv)
    paths = ProjectPaths(default_home())
    try:
        if args.command == "verify":
            print(verify(paths))
        else:
            record = restore(paths, args.version, args.reason)
            print(f"{record.registered_name} v{record.version} is champion again (signed restore record)")
    except pr.ChampionIntegrityError as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 1
    except PolicyError as exc:
        return report_policy_error(exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
