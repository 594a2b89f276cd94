"""A CycloneDX software bill of materials built from the project's hash-checked lock files.

The locks (``requirements/*.lock``, written by ``make lock``) are what ``make setup`` installs, so
they, not the running interpreter, are the authoritative list of the software a model version was
made with. Each locked package becomes a component with its package URL and the SHA-256 hashes the
lock pins; which lock (virtual environment) it came from is a property. The document is reproducible:
its serial number is derived from the locks' content and its timestamp is given by the caller.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

SPEC_VERSION = "1.6"
# "name==version \" lines followed by "--hash=sha256:..." lines, as uv and pip-tools write them.
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")
_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")
_NAMESPACE = uuid.UUID("6b1d6f0e-4a8e-4f4b-9a4e-1f2c3d4e5f60")


@dataclass
class LockedPackage:
    name: str
    version: str
    hashes: list[str] = field(default_factory=list)
    locks: list[str] = field(default_factory=list)


class LockFileError(ValueError):
    """A lock file without a single pinned package (not a lock, or truncated)."""


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_lock(text: str) -> list[LockedPackage]:
    """Pinned packages of one requirements lock, in file order, with their SHA-256 hashes."""
    packages: list[LockedPackage] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        pin = _PIN.match(stripped)
        if pin:
            packages.append(LockedPackage(_normalise(pin.group(1)), pin.group(2)))
        if packages:
            packages[-1].hashes.extend(_HASH.findall(stripped))
    return packages


def locked_packages(locks: Sequence[Path]) -> list[LockedPackage]:
    """Every package pinned by any of ``locks``, one entry per name and version, sorted by name."""
    merged: dict[tuple[str, str], LockedPackage] = {}
    for lock in locks:
        parsed = parse_lock(lock.read_text(encoding="utf-8"))
        if not parsed:
            raise LockFileError(f"{lock}: no pinned package (name==version) found")
        for package in parsed:
            entry = merged.setdefault((package.name, package.version), LockedPackage(package.name, package.version))
            entry.hashes = sorted(set(entry.hashes) | set(package.hashes))
            entry.locks.append(lock.name)
    return [merged[key] for key in sorted(merged)]


def build_sbom(
    locks: Sequence[Path],
    project_name: str,
    project_version: str,
    timestamp: datetime,
    properties: Iterable[tuple[str, str]] = (),
) -> str:
    """The CycloneDX 1.6 JSON document for the project and every package its locks pin."""
    from cyclonedx.model import HashAlgorithm, HashType, Property
    from cyclonedx.model.bom import Bom, BomMetaData
    from cyclonedx.model.component import Component, ComponentType
    from cyclonedx.output.json import JsonV1Dot6
    from packageurl import PackageURL

    packages = locked_packages(locks)
    components = [
        Component(
            name=package.name,
            version=package.version,
            type=ComponentType.LIBRARY,
            bom_ref=f"pkg:pypi/{package.name}@{package.version}",
            purl=PackageURL(type="pypi", name=package.name, version=package.version),
            hashes=[HashType(alg=HashAlgorithm.SHA_256, content=digest) for digest in package.hashes],
            properties=[Property(name="mlcomops:lock", value=lock) for lock in package.locks],
        )
        for package in packages
    ]
    digest = hashlib.sha256()
    for lock in locks:
        digest.update(lock.name.encode() + b"\0" + lock.read_bytes() + b"\0")
    root = Component(
        name=project_name,
        version=project_version,
        type=ComponentType.APPLICATION,
        bom_ref=f"{project_name}@{project_version}",
        properties=[Property(name=name, value=value) for name, value in properties],
    )
    bom = Bom(
        components=components,
        serial_number=uuid.uuid5(_NAMESPACE, digest.hexdigest() + project_version),
        metadata=BomMetaData(component=root, timestamp=timestamp),
    )
    # Every package is a direct dependency of the application: the locks are flat lists.
    bom.register_dependency(root, components)
    return JsonV1Dot6(bom).output_as_string(indent=2)
