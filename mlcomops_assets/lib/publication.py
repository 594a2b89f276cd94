"""What goes into the publication folder, in which form a browser can read it, and its mirror.

Reports written as Markdown are published as self-contained HTML pages (rendered with markdown-it-py,
no script, no external resource), so the report server never has to guess how to show a text format.
In the team profile the folder is also mirrored to the object store (``mirror``): only what the report
server would serve and what passes the row-level scan (``lib.evidence_scan``) is uploaded.
"""

from __future__ import annotations

import hashlib
import html
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlcomops_assets.lib.files import write_atomic

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.45; }}
table {{ border-collapse: collapse; margin: 1rem 0; }} th, td {{ border: 1px solid #bbb; padding: .25rem .5rem; }}
th {{ background: #eee; }} code {{ background: #f4f4f4; padding: 0 .2rem; }}
</style></head>
<body>
{body}
</body></html>
"""


def markdown_to_html(markdown: str, title: str) -> str:
    """A standalone HTML page for a Markdown report; raw HTML in the source is escaped, not rendered."""
    from markdown_it import MarkdownIt

    renderer = MarkdownIt("commonmark", {"html": False}).enable("table")
    return _PAGE.format(title=html.escape(title), body=renderer.render(markdown))


def publish_markdown(markdown: str, target: Path, title: str) -> Path:
    """Write ``target`` (.md) and its rendered HTML beside it; returns the HTML page, the one to link."""
    write_atomic(target, lambda p: p.write_text(markdown, encoding="utf-8"))
    page = target.with_suffix(".html")
    rendered = markdown_to_html(markdown, title)
    return write_atomic(page, lambda p: p.write_text(rendered, encoding="utf-8"))


# --- The publication's copy on the object store (team profile) -----------------------------------------
#
# The mirror holds what the report server would serve and nothing else: the regular files below the
# publication folder that are not hidden (the temporary files of an atomic write are) and not symbolic
# links, each uploaded only after its bytes passed the row-level scan. The bytes scanned are the bytes
# uploaded (read once), so a report replaced between the scan and the upload cannot slip through.
# Each object is written with one PUT (S3 makes it visible whole or not at all). A key whose file was
# deleted, or no longer passes the scan, is removed, so the mirror never shows what the folder no
# longer publishes; the object store's versioning keeps the history (docs/deployment.md).

Scan = Callable[[Path, bytes], list[str]]


@dataclass(frozen=True)
class MirrorResult:
    """What one mirror pass did, by path relative to the publication folder."""

    target: str
    uploaded: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    # Not uploaded (and removed from the mirror if it was there): path -> why.
    refused: dict[str, str] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.target}: {len(self.uploaded)} uploaded, {len(self.unchanged)} unchanged, "
            f"{len(self.refused)} refused, {len(self.removed)} removed"
        )


def served_files(published_dir: Path) -> tuple[list[Path], dict[str, str]]:
    """The files the report server would serve (regular, not hidden, not reached through a symbolic
    link), and the symbolic links below ``published_dir`` with the reason they are left out."""
    served: list[Path] = []
    left_out: dict[str, str] = {}
    if not published_dir.is_dir():
        return served, left_out
    # os.walk does not descend into linked folders; hidden names are never served (temporary files
    # of atomic writes), so they are skipped without a reason.
    for folder, dirs, names in os.walk(published_dir, followlinks=False):
        base = Path(folder)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in [*dirs, *names]:
            if (base / name).is_symlink() and not name.startswith("."):
                relative = (base / name).relative_to(published_dir).as_posix()
                left_out[relative] = "a symbolic link: only files written into the folder are mirrored"
        dirs[:] = [d for d in dirs if not (base / d).is_symlink()]
        served += [
            base / n
            for n in sorted(names)
            if not n.startswith(".") and (base / n).is_file() and not (base / n).is_symlink()
        ]
    return sorted(served), left_out


def row_scan(index: Any) -> Scan:
    """The publication scan over ``index`` (an ``evidence_scan.RowIndex``): each finding as text."""
    from mlcomops_assets.lib.evidence_scan import scan_file

    def scan(path: Path, data: bytes) -> list[str]:
        return [str(f) for f in scan_file(path, index, reader=lambda _: data)]

    return scan


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def _remote_md5s(fs: Any, root: str) -> dict[str, str | None]:
    """Every object below ``root`` by relative key, with its MD5 when the store says it (the ETag of a
    single-PUT S3 object), else None (then the file is uploaded again)."""
    if not fs.exists(root):
        return {}
    found = {}
    for key, info in fs.find(root, detail=True).items():
        if info.get("type", "file") != "file":
            continue
        etag = str(info.get("ETag") or info.get("etag") or "").strip('"')
        relative = key[len(root) :].lstrip("/")
        found[relative] = etag if len(etag) == 32 and "-" not in etag else None
    return found


def mirror(published_dir: Path, target: Any, scan: Scan) -> MirrorResult:
    """Make ``target`` (a UPath, e.g. ``s3://bucket/prefix/published``) hold exactly the files of
    ``published_dir`` that pass ``scan``: upload new and changed ones (one PUT each), leave identical
    ones, remove keys whose file is gone or now fails the scan. A file that cannot be scanned is
    refused (the scan decides what may leave the machine, so an error keeps the file here)."""
    fs, root = target.fs, target.path.rstrip("/")
    result = MirrorResult(target=str(target))
    files, left_out = served_files(published_dir)
    result.refused.update(left_out)
    remote = _remote_md5s(fs, root)
    keep: set[str] = set()
    for path in files:
        relative = path.relative_to(published_dir).as_posix()
        data = path.read_bytes()
        try:
            findings = scan(path, data)
        except Exception as exc:  # noqa: BLE001 (any failure to read a file keeps it unpublished)
            findings = [f"could not be scanned ({type(exc).__name__}: {exc})"]
        if findings:
            result.refused[relative] = "; ".join(findings)
            continue
        keep.add(relative)
        if remote.get(relative) == _md5(data):
            result.unchanged.append(relative)
            continue
        fs.pipe_file(f"{root}/{relative}", data)
        result.uploaded.append(relative)
    for relative in sorted(set(remote) - keep):
        fs.rm_file(f"{root}/{relative}")
        result.removed.append(relative)
    return result
