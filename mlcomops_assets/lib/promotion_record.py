"""Signed promotion records: the champion is the version the pipeline promoted, byte for byte.

The registry alias `champion` can be moved by anyone who can reach MLflow's REST API, and an artifact
can be changed on disk. So promotion writes a record of its verdict (model version, the SHA-256 of the
model artifact, the SHA-256 of each evidence file, the verdict, the time) and signs it with Ed25519.
Every consumer verifies, before it uses the champion: the alias points at a version carrying a record
whose signature checks out with the project's key, the record names that version, the version is the
one the pipeline promoted last (a hand-made rollback is refused too), and the artifact it is about to
load has the recorded hash. The private key lives outside the repository (like the pseudonym key);
the record carries the public key so an auditor can check a signature without it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mlcomops_assets.lib.files import file_sha256

KEY_FILE_ENV = "MLCOMOPS_SIGNING_KEY_FILE"
RECORD_TAG = "promotion.record"
SIGNATURE_TAG = "promotion.signature"
SCHEMA = "mlcomops.promotion/1"


class ChampionIntegrityError(RuntimeError):
    """The champion (or a model version) cannot be trusted; the message names the version and the reason."""


def default_key_file(environ: Mapping[str, str] | None = None) -> Path:
    """``$MLCOMOPS_SIGNING_KEY_FILE``, else ``$XDG_CONFIG_HOME/mlcomops/promotion-ed25519.pem`` (outside any
    repository, readable by the owner only)."""
    env = os.environ if environ is None else environ
    if env.get(KEY_FILE_ENV):
        return Path(env[KEY_FILE_ENV]).expanduser()
    config = Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return config / "mlcomops" / "promotion-ed25519.pem"


def load_private_key(path: Path, create: bool = False):
    """The Ed25519 signing key; ``create`` makes one (mode 0600) when missing: only promotion may."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    if not path.is_file():
        if not create:
            raise ChampionIntegrityError(
                f"no promotion signing key at {path}: set {KEY_FILE_ENV} to the key the pipeline signs with "
                "(it is created by the first promotion)"
            )
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
        return key
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ChampionIntegrityError(f"{path} is not an Ed25519 private key")
    return key


def public_key_hex(private_key) -> str:
    from cryptography.hazmat.primitives import serialization

    raw = private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw.hex()


# MLflow writes this file into the model's own folder whenever a local store serves a `models:/name/N`
# download (mlflow/store/artifact/models_artifact_repo.py): it names the version last loaded, so it
# changes when another version of the same logged model is loaded. Bookkeeping, never read to predict.
_REGISTRY_BOOKKEEPING = {"registered_model_meta"}


def tree_sha256(folder: Path) -> str:
    """One SHA-256 over every file below ``folder`` that makes up the model: relative path and content
    hash, in path order (MLflow's registry bookkeeping file excluded)."""
    lines = [
        f"{p.relative_to(folder).as_posix()}\0{file_sha256(p)}\n"
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name not in _REGISTRY_BOOKKEEPING
    ]
    if not lines:
        raise ChampionIntegrityError(f"{folder} holds no file to hash")
    return hashlib.sha256("".join(lines).encode()).hexdigest()


@dataclass(frozen=True)
class PromotionRecord:
    """What promotion decided about one model version, as signed."""

    registered_name: str
    version: str
    artifact_sha256: str
    evidence_sha256: dict[str, str]
    verdict: str
    decided_at: str  # ISO 8601 UTC with microseconds: orders promotions
    dagster_run_id: str
    previous_champion: str | None
    public_key: str
    kind: str = "promotion"  # or "restore"
    schema: str = SCHEMA
    extra: dict[str, Any] = field(default_factory=dict)

    def canonical(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, text: str) -> PromotionRecord:
        return cls(**json.loads(text))


def sign(record: PromotionRecord, private_key) -> str:
    return base64.b64encode(private_key.sign(record.canonical())).decode()


def verify_signature(record_text: str, signature: str, public_key: str) -> PromotionRecord:
    """The record, if ``signature`` is the signature of exactly ``record_text`` by ``public_key``."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        record = PromotionRecord.from_json(record_text)
    except (TypeError, ValueError) as exc:
        raise ChampionIntegrityError(f"the promotion record cannot be read ({exc})") from None
    if record.canonical() != record_text.encode():
        raise ChampionIntegrityError("the promotion record is not in its signed form")
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key)).verify(
            base64.b64decode(signature), record_text.encode()
        )
    except (InvalidSignature, ValueError):
        raise ChampionIntegrityError(
            "the promotion record's signature does not verify with the project's key"
        ) from None
    return record


def record_of(tags: Mapping[str, str], public_key: str) -> PromotionRecord | None:
    """The verified record in a model version's tags, or None if it has none or it does not verify."""
    if RECORD_TAG not in tags or SIGNATURE_TAG not in tags:
        return None
    try:
        return verify_signature(tags[RECORD_TAG], tags[SIGNATURE_TAG], public_key)
    except ChampionIntegrityError:
        return None
