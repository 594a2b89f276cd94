"""``mlcomops audit verify``, run as an auditor runs it: in a subprocess, on a bundle or a chain of
bundles, offline. Exit 0 when everything verifies; 1 naming the item, signature or link that does not;
2 for an unreadable ``--public-key``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from mlcomops_assets.lib.audit_bundle import Bundle
from mlcomops_assets.lib.promotion_record import default_key_file, load_private_key, public_key_hex
from mlcomops_assets.policy import POLICY_ERROR_EXIT_CODE
from mlcomops_assets_tests.lib.test_audit_bundle import build_chain, flip_byte


def audit_verify(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mlcomops_assets.cli", "audit", "verify", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def chain(tmp_path: Path) -> list[Bundle]:
    return build_chain(tmp_path, load_private_key(default_key_file(), create=True))


def test_a_good_bundle_and_chain_exit_0(chain: list[Bundle]) -> None:
    trusted = str(default_key_file())  # the operator may pass the key file itself: its public half is used
    bundle = audit_verify(str(chain[1].folder), "--public-key", trusted)
    assert bundle.returncode == 0, bundle.stdout + bundle.stderr
    assert "  ok         model.skops [model]" in bundle.stdout
    assert "signature  ok: valid, by the trusted key" in bundle.stdout
    assert bundle.stdout.rstrip().splitlines()[-1] == f"verified: {chain[1].folder}"

    whole = audit_verify(str(chain[0].folder.parent), "--public-key", public_key_hex(load_private_key(Path(trusted))))
    assert whole.returncode == 0, whole.stdout + whole.stderr
    assert "link v2 -> v3 ok" in whole.stdout
    assert audit_verify(str(chain[2].zip_path)).returncode == 0


def test_a_tampered_bundle_exits_1_and_names_the_item(chain: list[Bundle]) -> None:
    flip_byte(chain[1].folder / "items/validation/validation_result.json")
    (chain[1].folder / "items/model/model.skops").unlink()

    done = audit_verify(str(chain[1].folder))
    assert done.returncode == 1, done.stdout + done.stderr
    assert "CHANGED    validation_result.json [validation]" in done.stdout
    assert "MISSING    model.skops [model]" in done.stdout
    assert done.stdout.rstrip().splitlines()[-1].startswith("FAILED:")

    whole = audit_verify(str(chain[0].folder.parent.parent))  # data/audit: every model's chain below it
    assert whole.returncode == 1
    assert "CHANGED    validation_result.json" in whole.stdout


def test_another_signer_is_refused_and_a_bad_key_is_a_usage_error(chain: list[Bundle]) -> None:
    stranger = public_key_hex(Ed25519PrivateKey.generate())
    refused = audit_verify(str(chain[0].folder), "--public-key", stranger)
    assert refused.returncode == 1
    assert "signature  FAILED: refused: signed by key" in refused.stdout

    unreadable = audit_verify(str(chain[0].folder), "--public-key", "not-a-key")
    assert unreadable.returncode == POLICY_ERROR_EXIT_CODE
    assert "--public-key" in unreadable.stderr
