"""Signed, hash-chained audit bundles: the evidence of one model version, verifiable offline.

A bundle is one folder (``data/audit/<registered model>/v<version>/``) holding copies of the evidence
(``items/<kind>/<name>``), a self-contained ``index.html`` and a ``manifest.json`` that lists every
file with its SHA-256, size and origin, records the SHA-256 of the previous version's manifest file
(so versions form a chain: changing or removing one breaks the link of the next) and is signed with
the promotion key (Ed25519, ``promotion_record``), whose public key it carries. A deterministic zip of
the folder is written beside it, for handing over in one file.

Verification needs nothing but the bundle (and, to know *who* signed, the trusted public key): it
rehashes every file, finds missing and unlisted ones, checks the signature and the chain, and reports
each problem by item name instead of raising, because tampered input is what it is for.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import re
import shutil
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from mlcomops_assets.lib.files import file_sha256, write_atomic
from mlcomops_assets.lib.promotion_record import public_key_hex

SCHEMA = "mlcomops.audit-bundle/1"
MANIFEST = "manifest.json"
INDEX = "index.html"
ITEMS = "items"
INDEX_KIND = "index"  # reserved: the builder lists its own index.html under this kind
KINDS = frozenset(
    {"model", "report", "policy", "validation", "data_version", "lock", "record", "run", "sbom", "documentation"}
)
REQUIRED_META = ("registered_model", "version")

OK, CHANGED, MISSING, UNLISTED = "ok", "changed", "missing", "unlisted"

# Fixed zip metadata: the same folder always gives the same zip bytes (1980-01-01 is the zip epoch).
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_ZIP_FILE_MODE = 0o100644 << 16
_VERSION_DIR = re.compile(r"v(\d+)")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
# What reading a damaged bundle raises: reported as a verdict, never passed on.
_UNREADABLE = (OSError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError)


class BundleError(ValueError):
    """The evidence handed to ``build_bundle`` cannot make a bundle (bad name, kind, meta, folder)."""


# --- building -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EvidenceItem:
    """One piece of evidence: a file or folder to copy (``path``) or bytes to write (``content``).

    ``source`` says where it came from (a path, an MLflow URI, a note); a folder becomes one manifest
    entry per file, named ``<name>/<relative path>``.
    """

    name: str
    kind: str
    source: str
    path: Path | None = None
    content: bytes | None = None


@dataclass(frozen=True)
class Bundle:
    """Where ``build_bundle`` wrote a bundle, and the hash the next version chains to."""

    folder: Path
    manifest_path: Path
    zip_path: Path
    manifest_sha256: str


def canonical(payload: Mapping[str, Any]) -> bytes:
    """The bytes that are signed: sorted keys, no whitespace (as ``PromotionRecord.canonical``)."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def _safe_relative(name: str) -> PurePosixPath | None:
    """``name`` as a relative path that stays inside its folder, or None (absolute, ``..``, empty parts)."""
    if not name or "\\" in name or any(ord(c) < 32 for c in name):
        return None
    path = PurePosixPath(name)
    if path.is_absolute() or any(part in ("", ".", "..") for part in name.split("/")):
        return None
    return path


def _expand(item: EvidenceItem) -> Iterator[tuple[str, Path | bytes]]:
    """(name, file or bytes) for each file the item contributes."""
    if (item.path is None) == (item.content is None):
        raise BundleError(f"evidence item {item.name!r}: give exactly one of path and content")
    if item.content is not None:
        yield item.name, bytes(item.content)
        return
    path = Path(item.path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        if not files:
            raise BundleError(f"evidence item {item.name!r}: folder {path} holds no file")
        for file in files:
            yield f"{item.name}/{file.relative_to(path).as_posix()}", file
    elif path.is_file():
        yield item.name, path
    else:
        raise BundleError(f"evidence item {item.name!r}: {path} does not exist")


def _copy_items(items: Iterable[EvidenceItem], staging: Path) -> list[dict[str, Any]]:
    """Copy or write every item under ``staging/items/<kind>/`` and return their manifest entries."""
    entries: list[dict[str, Any]] = []
    seen: set[str] = set()
    for item in items:
        if item.kind not in KINDS:
            raise BundleError(f"evidence item {item.name!r}: kind {item.kind!r} is not one of {sorted(KINDS)}")
        for name, origin in _expand(item):
            if _safe_relative(name) is None:
                raise BundleError(f"evidence item name {name!r} is not a plain relative name")
            if name in seen:  # verdicts name items: names must be unambiguous across kinds
                raise BundleError(f"two evidence items are named {name!r}")
            seen.add(name)
            relative = f"{ITEMS}/{item.kind}/{name}"
            target = staging / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(origin, bytes):
                target.write_bytes(origin)
            else:
                shutil.copyfile(origin, target)
            entries.append(_entry(name, item.kind, relative, target, item.source))
    return entries


def item_digests(items: Iterable[EvidenceItem]) -> dict[str, str]:
    """SHA-256 of every file the items would contribute, by its path in a bundle (nothing is written):
    lets a caller see whether an existing bundle already holds exactly this evidence."""
    digests = {}
    for item in items:
        for name, origin in _expand(item):
            data = origin if isinstance(origin, bytes) else None
            digests[f"{ITEMS}/{item.kind}/{name}"] = (
                hashlib.sha256(data).hexdigest() if data is not None else file_sha256(origin)
            )
    return digests


def _entry(name: str, kind: str, relative: str, file: Path, source: str) -> dict[str, Any]:
    # Hashed from the copy in the bundle: that is what verification will read.
    return {
        "name": name,
        "kind": kind,
        "path": relative,
        "sha256": file_sha256(file),
        "size": file.stat().st_size,
        "source": str(source),
    }


def _checked_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    missing = [key for key in REQUIRED_META if meta.get(key) in (None, "")]
    if missing:
        raise BundleError(f"bundle meta lacks {', '.join(missing)}")
    checked = {"created_at": datetime.now(UTC).isoformat(), **meta, "version": str(meta["version"])}
    try:
        json.loads(json.dumps(checked, allow_nan=False))
    except (TypeError, ValueError) as exc:  # the signature must survive a JSON round trip exactly
        raise BundleError(f"bundle meta is not plain JSON ({exc})") from None
    return checked


def build_bundle(
    items: Iterable[EvidenceItem],
    folder: Path,
    previous_manifest_hash: str | None,
    key,
    meta: Mapping[str, Any],
    replace: bool = False,
) -> Bundle:
    """Write the bundle ``folder`` (items, ``index.html``, signed ``manifest.json``) and ``<folder>.zip``.

    ``key`` is the Ed25519 private key (``promotion_record.load_private_key``); ``meta`` must name the
    ``registered_model`` and ``version`` (plus e.g. ``git_commit``, ``policy_fingerprint``;
    ``created_at`` defaults to now). The bundle is assembled in a sibling folder and renamed into
    place, so a crash never leaves a half bundle; an existing bundle is kept unless ``replace``
    (a signed bundle is evidence: overwriting it must be asked for).
    """
    folder = Path(folder)
    if previous_manifest_hash is not None and not _HEX64.fullmatch(previous_manifest_hash):
        raise BundleError(f"previous manifest hash {previous_manifest_hash!r} is not a SHA-256 hex digest")
    if folder.exists() and not replace:
        raise BundleError(f"{folder} already exists; pass replace=True to rebuild it")
    checked_meta = _checked_meta(meta)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = folder.parent / f".{folder.name}.{os.getpid()}.building"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        entries = _copy_items(items, staging)
        (staging / INDEX).write_text(render_index(entries, checked_meta, previous_manifest_hash), encoding="utf-8")
        entries.append(_entry(INDEX, INDEX_KIND, INDEX, staging / INDEX, "generated from this manifest"))
        manifest = {
            "schema": SCHEMA,
            "meta": checked_meta,
            "items": sorted(entries, key=lambda e: e["path"]),
            "previous_manifest_sha256": previous_manifest_hash.lower() if previous_manifest_hash else None,
            "public_key": public_key_hex(key),
        }
        manifest["signature"] = base64.b64encode(key.sign(canonical(manifest))).decode()
        text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
        (staging / MANIFEST).write_text(text, encoding="utf-8")
        zip_path = folder.with_name(folder.name + ".zip")
        write_atomic(zip_path, lambda tmp: write_zip(staging, tmp, folder.name))
        _move_into_place(staging, folder)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return Bundle(folder, folder / MANIFEST, zip_path, hashlib.sha256(text.encode()).hexdigest())


def _move_into_place(staging: Path, folder: Path) -> None:
    old = folder.parent / f".{folder.name}.{os.getpid()}.replaced"
    if folder.exists():
        os.replace(folder, old)
    os.replace(staging, folder)
    shutil.rmtree(old, ignore_errors=True)


def write_zip(folder: Path, target: Path, prefix: str) -> None:
    """Zip every file of ``folder`` under ``prefix/``: sorted entries, fixed times and modes, so the
    same folder always gives the same bytes (an auditor can compare two copies by hash)."""
    files = sorted((p.relative_to(folder).as_posix(), p) for p in folder.rglob("*") if p.is_file())
    with zipfile.ZipFile(target, "w") as zf:
        for relative, path in files:
            info = zipfile.ZipInfo(f"{prefix}/{relative}", date_time=_ZIP_TIME)
            info.external_attr = _ZIP_FILE_MODE
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, wherever it is built
            zf.writestr(info, path.read_bytes(), compresslevel=9)


# --- the offline index ---------------------------------------------------------------------------------

_STYLE = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#222}
table{border-collapse:collapse;margin:1rem 0}
td,th{border:1px solid #ccc;padding:.3rem .6rem;text-align:left;vertical-align:top}
code{font-size:.85em;word-break:break-all}
"""


def render_index(entries: list[dict[str, Any]], meta: Mapping[str, Any], previous: str | None) -> str:
    """A self-contained HTML page listing the items with relative links: inline style, no scripts, and a
    Content-Security-Policy that forbids loading anything, so opening it offline contacts no one."""
    esc = html.escape
    meta_rows = "".join(f"<tr><th>{esc(str(k))}</th><td>{esc(str(v))}</td></tr>" for k, v in sorted(meta.items()))
    item_rows = "".join(
        f'<tr><td><a href="{esc(quote(e["path"]))}">{esc(e["name"])}</a></td><td>{esc(e["kind"])}</td>'
        f"<td>{e['size']}</td><td><code>{e['sha256']}</code></td><td>{esc(e['source'])}</td></tr>"
        for e in sorted(entries, key=lambda e: (e["kind"], e["name"]))
    )
    title = esc(f"Audit bundle: {meta['registered_model']} v{meta['version']}")
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        f"<title>{title}</title><style>{_STYLE}</style></head><body>\n<h1>{title}</h1>\n"
        f"<table>{meta_rows}<tr><th>previous manifest SHA-256</th>"
        f"<td><code>{esc(previous or 'none (first version)')}</code></td></tr></table>\n"
        '<p>Every file is listed with its SHA-256 in <a href="manifest.json">manifest.json</a>, which is '
        "signed; check it with <code>mlcomops audit verify</code>.</p>\n"
        "<table><tr><th>item</th><th>kind</th><th>bytes</th><th>SHA-256</th><th>source</th></tr>"
        f"{item_rows}</table>\n</body></html>\n"
    )


# --- verifying ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemVerdict:
    """One file's verdict: ``ok``, ``changed``, ``missing`` or ``unlisted`` (present, not in the manifest)."""

    name: str
    kind: str
    path: str
    status: str
    detail: str = ""


@dataclass(frozen=True)
class Verification:
    """The verdict on one bundle. ``chain_ok`` is None when no previous manifest was given."""

    bundle: str
    items: tuple[ItemVerdict, ...] = ()
    problems: tuple[str, ...] = ()  # the manifest itself: unreadable, malformed, not found
    signature_ok: bool = False
    signature_detail: str = ""
    signer: str | None = None
    chain_ok: bool | None = None
    chain_detail: str = ""
    manifest_sha256: str | None = None
    previous_manifest_sha256: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return (
            not self.problems
            and self.signature_ok
            and self.chain_ok is not False
            and all(v.status == OK for v in self.items)
        )

    @property
    def failed_items(self) -> list[ItemVerdict]:
        return [v for v in self.items if v.status != OK]


class _Folder:
    """The files of a bundle folder, by relative path."""

    outside: tuple[str, ...] = ()  # a folder has no entries outside itself (a zip may)
    duplicates: frozenset[str] = frozenset()

    def __init__(self, root: Path):
        self.root = root

    def names(self) -> list[str]:
        return sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())

    def read(self, name: str) -> bytes | None:
        path = self.root / name
        return path.read_bytes() if path.is_file() else None

    def digest(self, name: str) -> tuple[str, int] | None:
        path = self.root / name
        return (file_sha256(path), path.stat().st_size) if path.is_file() else None


class _Zip:
    """The files of a bundle zip under its top folder, read without extracting anything."""

    def __init__(self, zf: zipfile.ZipFile):
        self.zf = zf
        entries = [i for i in zf.infolist() if not i.is_dir()]
        manifests = sorted((i.filename for i in entries if i.filename.rsplit("/", 1)[-1] == MANIFEST), key=len)
        self.prefix = manifests[0][: -len(MANIFEST)] if manifests else ""
        self.by_name: dict[str, zipfile.ZipInfo] = {}
        self.duplicates: set[str] = set()
        self.outside: list[str] = []
        for info in entries:
            if not info.filename.startswith(self.prefix):
                self.outside.append(info.filename)
                continue
            name = info.filename[len(self.prefix) :]
            if name in self.by_name:  # a second entry of one name: readers disagree on which one counts
                self.duplicates.add(name)
            self.by_name[name] = info

    def names(self) -> list[str]:
        return sorted(self.by_name)

    def read(self, name: str) -> bytes | None:
        return self.zf.read(self.by_name[name]) if name in self.by_name else None

    def digest(self, name: str) -> tuple[str, int] | None:
        if name not in self.by_name:
            return None
        digest, size = hashlib.sha256(), 0
        with self.zf.open(self.by_name[name]) as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
                size += len(chunk)
        return digest.hexdigest(), size


def parse_public_key(value: str | Path) -> str:
    """An Ed25519 public key as hex (the encoding records and manifests use), from hex, base64 of the 32
    raw bytes, a PEM public key, or a PEM private key (its public half); or from a file holding one."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

    text = str(value).strip()
    candidate = Path(text).expanduser() if len(text) < 4096 and "\n" not in text else None
    if candidate is not None and candidate.is_file():
        text = candidate.read_text(encoding="utf-8").strip()
    if _HEX64.fullmatch(text):
        return text.lower()
    if "-----BEGIN" in text:
        data = text.encode()
        try:
            key = (
                serialization.load_pem_private_key(data, password=None)
                if "PRIVATE KEY" in text
                else serialization.load_pem_public_key(data)
            )
        except (TypeError, UnsupportedAlgorithm) as exc:  # an encrypted or unsupported key: one error type
            raise ValueError(f"the PEM key cannot be read ({exc})") from None
        if isinstance(key, Ed25519PrivateKey):
            return public_key_hex(key)
        if isinstance(key, Ed25519PublicKey):
            return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
        raise ValueError("the PEM key is not an Ed25519 key")
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise ValueError(f"{value!s:.80} is neither a key file nor an Ed25519 public key (hex or base64)")
    return raw.hex()


def _check_signature(manifest: Mapping[str, Any], trusted: str | None) -> tuple[bool, str]:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    signer = str(manifest.get("public_key") or "").lower()
    if trusted is not None and signer != trusted.lower():
        return False, f"refused: signed by key {signer[:16] or '(none)'}…, not by the trusted key {trusted[:16]}…"
    unsigned = {k: v for k, v in manifest.items() if k != "signature"}
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(signer)).verify(
            base64.b64decode(str(manifest.get("signature") or ""), validate=True), canonical(unsigned)
        )
    except (InvalidSignature, ValueError, TypeError):
        return False, "does not verify: the manifest was changed after signing (or the signature was)"
    if trusted is None:
        return True, f"valid for the key in the manifest ({signer[:16]}…); pass a trusted key to check who signed"
    return True, f"valid, by the trusted key ({signer[:16]}…)"


def _item_verdicts(manifest: Mapping[str, Any], files) -> tuple[list[ItemVerdict], list[str]]:
    verdicts: list[ItemVerdict] = []
    problems: list[str] = []
    listed: set[str] = {MANIFEST}
    entries = manifest.get("items")
    if not isinstance(entries, list):
        return verdicts, ["the manifest lists no items"]
    for entry in entries:
        if not isinstance(entry, dict):
            problems.append(f"a manifest entry is not an object: {entry!r:.80}")
            continue
        name, kind, path = str(entry.get("name")), str(entry.get("kind")), str(entry.get("path"))
        if _safe_relative(path) is None or path == MANIFEST:
            verdicts.append(ItemVerdict(name, kind, path, CHANGED, "its path leaves the bundle; not read"))
            continue
        listed.add(path)
        try:
            found = files.digest(path)
        except _UNREADABLE as exc:  # a corrupted zip entry (bad CRC, broken deflate data) is a changed item
            verdicts.append(ItemVerdict(name, kind, path, CHANGED, f"unreadable ({type(exc).__name__}: {exc})"))
            continue
        if found is None:
            verdicts.append(ItemVerdict(name, kind, path, MISSING, "listed in the manifest, not in the bundle"))
        elif path in files.duplicates:
            verdicts.append(ItemVerdict(name, kind, path, CHANGED, "the zip holds two entries of this path"))
        elif found != (entry.get("sha256"), entry.get("size")):
            verdicts.append(
                ItemVerdict(
                    name,
                    kind,
                    path,
                    CHANGED,
                    f"sha256 {found[0]} ({found[1]} bytes), recorded {entry.get('sha256')} ({entry.get('size')} bytes)",
                )
            )
        else:
            verdicts.append(ItemVerdict(name, kind, path, OK))
    for extra in files.names():
        if extra not in listed:
            verdicts.append(ItemVerdict(extra, "?", extra, UNLISTED, "in the bundle, not in the manifest"))
    for extra in files.outside:
        verdicts.append(ItemVerdict(extra, "?", extra, UNLISTED, "in the zip, outside the bundle's folder"))
    return verdicts, problems


def _expected_previous(previous: str | Path | None) -> tuple[str | None, str]:
    """The manifest hash ``previous`` stands for: a hex digest as given, or the hash of a bundle's manifest."""
    if previous is None or isinstance(previous, str):
        return previous, "the given hash"
    found = manifest_sha256(previous)
    return found, f"the manifest of {previous}"


def _verify_files(label: str, files, trusted: str | None, previous: str | Path | None) -> Verification:
    raw = files.read(MANIFEST)
    if raw is None:
        return Verification(label, problems=(f"no {MANIFEST} in the bundle",))
    digest = hashlib.sha256(raw).hexdigest()
    if MANIFEST in files.duplicates:
        return Verification(label, problems=(f"the zip holds two {MANIFEST} entries",), manifest_sha256=digest)
    try:
        manifest = json.loads(raw)
        if not isinstance(manifest, dict):
            raise ValueError("not a JSON object")
    except ValueError as exc:
        return Verification(label, problems=(f"{MANIFEST} cannot be read ({exc})",), manifest_sha256=digest)
    verdicts, problems = _item_verdicts(manifest, files)
    if manifest.get("schema") != SCHEMA:
        problems.append(f"unknown manifest schema {manifest.get('schema')!r}")
    signature_ok, signature_detail = _check_signature(manifest, trusted)
    recorded = manifest.get("previous_manifest_sha256")
    chain_ok, chain_detail = None, ""
    if previous is not None:
        expected, what = _expected_previous(previous)
        chain_ok = expected is not None and str(recorded).lower() == expected.lower()
        chain_detail = f"previous manifest sha256 {'matches' if chain_ok else 'is ' + str(recorded) + ', not'} {what}"
    meta = manifest.get("meta")
    return Verification(
        label,
        items=tuple(verdicts),
        problems=tuple(problems),
        signature_ok=signature_ok,
        signature_detail=signature_detail,
        signer=str(manifest.get("public_key") or "") or None,
        chain_ok=chain_ok,
        chain_detail=chain_detail,
        manifest_sha256=digest,
        previous_manifest_sha256=recorded if isinstance(recorded, str) else None,
        meta=meta if isinstance(meta, dict) else {},
    )


def verify_bundle(
    path: Path, trusted_public_key: str | None = None, previous: str | Path | None = None
) -> Verification:
    """Verify a bundle given as its folder, its zip or its ``manifest.json``; never raises on bad input.

    ``trusted_public_key`` (hex, see ``parse_public_key``) must be the signer, else the bundle is refused.
    ``previous`` is the previous version's manifest SHA-256 (hex) or that bundle's path: the manifest
    must record it.
    """
    path = Path(path)
    label = str(path)
    try:
        if path.is_file() and path.name == MANIFEST:
            path = path.parent
        if path.is_dir():
            return _verify_files(label, _Folder(path), trusted_public_key, previous)
        if path.is_file() and zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                return _verify_files(label, _Zip(zf), trusted_public_key, previous)
        return Verification(label, problems=(f"{path} is neither a bundle folder, its zip nor its {MANIFEST}",))
    except (*_UNREADABLE, ValueError) as exc:  # unreadable input is a verdict, not a crash
        return Verification(label, problems=(f"cannot read the bundle ({type(exc).__name__}: {exc})",))


def manifest_sha256(path: Path) -> str | None:
    """SHA-256 of a bundle's manifest file (folder, zip or manifest path): what the next version records."""
    path = Path(path)
    try:
        if path.is_file() and path.name == MANIFEST:
            return file_sha256(path)
        if path.is_dir():
            return file_sha256(path / MANIFEST) if (path / MANIFEST).is_file() else None
        with zipfile.ZipFile(path) as zf:
            raw = _Zip(zf).read(MANIFEST)
            return hashlib.sha256(raw).hexdigest() if raw is not None else None
    except _UNREADABLE:
        return None


# --- chains --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainLink:
    """Whether ``version`` records the manifest hash of ``previous`` (None: it must record none)."""

    version: str
    previous: str | None
    ok: bool
    detail: str


@dataclass(frozen=True)
class ChainVerification:
    """Every version's bundle (folder, and zip when present) and every link between them."""

    root: str
    bundles: tuple[tuple[str, Verification], ...] = ()
    links: tuple[ChainLink, ...] = ()
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems and all(v.ok for _, v in self.bundles) and all(link.ok for link in self.links)

    @property
    def broken_at(self) -> list[str]:
        return [link.version for link in self.links if not link.ok]


def version_dirs(root: Path) -> list[tuple[int, Path]]:
    """The ``v<N>`` folders of a model's audit directory, in version order."""
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _VERSION_DIR.fullmatch(p.name))]
    return sorted(found)


def _link(number: int, verification: Verification, before: tuple[int, Verification] | None) -> ChainLink:
    label, recorded = f"v{number}", verification.previous_manifest_sha256
    if before is None:
        ok = recorded is None
        detail = "first version, chains to nothing" if ok else f"records previous manifest {recorded}, none is here"
        return ChainLink(label, None, ok, detail)
    previous_label, previous = f"v{before[0]}", before[1]
    if previous.manifest_sha256 is None:
        return ChainLink(label, previous_label, False, f"{previous_label} has no manifest to chain to")
    ok = recorded is not None and recorded.lower() == previous.manifest_sha256
    detail = (
        f"records {previous_label}'s manifest sha256"
        if ok
        else f"records previous manifest {recorded}, but {previous_label}'s manifest is {previous.manifest_sha256}"
    )
    if ok and before[0] != number - 1:  # the chain is intact, yet a version between them has no bundle
        return ChainLink(label, previous_label, False, f"{detail}; versions between them have no bundle")
    return ChainLink(label, previous_label, ok, detail)


def verify_chain(root_dir: Path, trusted_public_key: str | None = None) -> ChainVerification:
    """Verify ``data/audit/<registered model>/``: each ``v<N>`` bundle (and its zip), and that each
    version records the SHA-256 of the previous version's manifest file; a break is named by version.

    What a chain cannot show: that a *latest* version was removed (nothing after it records it).
    """
    root = Path(root_dir)
    if not root.is_dir():
        return ChainVerification(str(root), problems=(f"{root} is not a folder",))
    versions = version_dirs(root)
    if not versions:
        return ChainVerification(str(root), problems=(f"{root} holds no v<version> bundle folder",))
    problems = [
        f"{p.name} has no bundle folder beside it"
        for p in sorted(root.glob("v*.zip"))
        if _VERSION_DIR.fullmatch(p.stem) and not (root / p.stem).is_dir()
    ]
    bundles: list[tuple[str, Verification]] = []
    links: list[ChainLink] = []
    before: tuple[int, Verification] | None = None
    for number, folder in versions:
        verification = verify_bundle(folder, trusted_public_key)
        declared = verification.meta.get("version")
        if declared is not None and str(declared) != str(number):
            problems.append(f"v{number} holds the bundle of version {declared}")
        bundles.append((f"v{number}", verification))
        zipped = folder.with_name(folder.name + ".zip")
        if zipped.is_file():  # the copy handed over must be the same bundle, not merely a valid one
            in_zip = verify_bundle(zipped, trusted_public_key)
            bundles.append((zipped.name, in_zip))
            if in_zip.manifest_sha256 != verification.manifest_sha256:
                problems.append(f"{zipped.name} holds another manifest than {folder.name}/")
        links.append(_link(number, verification, before))
        before = (number, verification)
    return ChainVerification(str(root), tuple(bundles), tuple(links), tuple(problems))


def verify_path(path: Path, trusted_public_key: str | None = None) -> list[Verification | ChainVerification]:
    """What ``mlcomops audit verify`` checks for ``path``: one bundle (folder, zip, manifest), one
    model's chain (a folder of ``v<N>`` bundles), or every model's chain below ``data/audit/``."""
    path = Path(path)
    if not path.is_dir() or (path / MANIFEST).is_file():
        return [verify_bundle(path, trusted_public_key)]
    if version_dirs(path):
        return [verify_chain(path, trusted_public_key)]
    models = sorted(p for p in path.iterdir() if p.is_dir() and version_dirs(p))
    if not models:
        return [verify_chain(path, trusted_public_key)]  # reports that there is nothing to verify
    return [verify_chain(model, trusted_public_key) for model in models]


# --- reporting -----------------------------------------------------------------------------------------


def _bundle_lines(verification: Verification, indent: str = "", compact: bool = False) -> list[str]:
    """The bundle's verdict lines; ``compact`` prints failed items only (for a zip beside its folder)."""
    meta = verification.meta
    about = f" ({meta.get('registered_model')} v{meta.get('version')})" if meta else ""
    lines = [f"{indent}bundle {verification.bundle}{about}"]
    lines += [f"{indent}  PROBLEM    {p}" for p in verification.problems]
    shown = verification.failed_items if compact else verification.items
    for v in shown:
        word = "ok" if v.status == OK else v.status.upper()
        lines.append(f"{indent}  {word:<10} {v.name} [{v.kind}] {v.path}" + (f": {v.detail}" if v.detail else ""))
    if compact and len(shown) < len(verification.items):
        lines.append(f"{indent}  {'ok':<10} {len(verification.items) - len(shown)} other item(s)")
    if verification.signature_detail:
        word = "ok" if verification.signature_ok else "FAILED"
        lines.append(f"{indent}  {'signature':<10} {word}: {verification.signature_detail}")
    if verification.chain_ok is not None:
        word = "ok" if verification.chain_ok else "BROKEN"
        lines.append(f"{indent}  {'chain':<10} {word}: {verification.chain_detail}")
    return lines


def _bundle_summary(verification: Verification) -> list[str]:
    failed = len(verification.failed_items)
    parts = [f"{failed} item(s) not ok"] if failed else []
    parts += [f"{len(verification.problems)} problem(s)"] if verification.problems else []
    parts += ["signature failed"] if not verification.signature_ok and not verification.problems else []
    parts += ["chain broken"] if verification.chain_ok is False else []
    return parts


def report(result: Verification | ChainVerification) -> str:
    """The verdict per item, signature and chain link, ending in one line: ``verified`` or ``FAILED``."""
    if isinstance(result, Verification):
        lines = _bundle_lines(result)
        parts = _bundle_summary(result)
        subject = result.bundle
    else:
        lines = [f"chain {result.root}: {len(result.links)} version(s)"]
        lines += [f"  PROBLEM    {p}" for p in result.problems]
        for label, verification in result.bundles:
            lines += _bundle_lines(verification, indent="  ", compact=label.endswith(".zip"))
        for link in result.links:
            word = "ok" if link.ok else "BROKEN"
            lines.append(f"  link {link.previous or '-'} -> {link.version} {word}: {link.detail}")
        parts = [f"{label}: {', '.join(_bundle_summary(v))}" for label, v in result.bundles if not v.ok]
        parts += [f"{len(result.problems)} problem(s)"] if result.problems else []
        parts += [f"chain broken at {', '.join(result.broken_at)}"] if result.broken_at else []
        subject = result.root
    verdict = "verified" if result.ok else "FAILED"
    return "\n".join([*lines, f"{verdict}: {subject}" + (f" ({'; '.join(parts)})" if parts else "")])
