"""Reading the configured source and the ingested raw file into pandas.

The source is confined: after following symlinks, ``data.source.path`` must lie inside the project
home or a folder listed in ``data.source.allowed_roots``, so a policy (or a symlink planted in the
home) cannot make the pipeline ingest an arbitrary file of the machine. Every refusal is a
``SourceError`` naming the path and the rule. No message here quotes a cell value: the data may be
personal, and error messages end up in run logs that more people read than the data.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import stat
from pathlib import Path

import pandas as pd

from mlcomops_assets.lib.files import write_atomic
from mlcomops_assets.policy import ColumnType, DataSpec


class SourceError(RuntimeError):
    """The configured source cannot be read; the message says what and where."""


_CONFINEMENT_RULE = (
    "rule: data.source.path must resolve, after following symlinks, inside the project home "
    "or a folder listed in data.source.allowed_roots"
)


def allowed_roots(spec: DataSpec, home: Path) -> list[Path]:
    """The folders the source may resolve into: the home, then the policy's ``allowed_roots``."""
    return [home.resolve()] + [(home / root).resolve() for root in spec.source.allowed_roots]


def resolve_source(spec: DataSpec, home: Path) -> Path:
    """The real path of the configured source file, or ``SourceError`` naming the path and the rule.

    Refused: a missing file, a symlink loop, a path that resolves outside the allowed roots, a
    directory or other non-regular file. Readability is checked when the file is opened.
    """
    given = spec.source.path or ""
    path = home / given
    try:
        real = path.resolve(strict=True)
    except FileNotFoundError:
        raise SourceError(f"data.source.path: file not found: {path}") from None
    except RuntimeError:  # Python 3.11 reports a symlink loop as RuntimeError("Symlink loop from ...")
        raise SourceError(f"data.source.path {given!r}: symlink loop at {path}; {_CONFINEMENT_RULE}") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # newer Pythons raise OSError(ELOOP) instead
            raise SourceError(f"data.source.path {given!r}: symlink loop at {path}; {_CONFINEMENT_RULE}") from None
        raise SourceError(
            f"data.source.path {given!r}: {path} cannot be resolved ({exc.strerror or type(exc).__name__}); "
            "rule: the source and its folders must be readable by the user running the pipeline"
        ) from None
    roots = allowed_roots(spec, home)
    if not any(real.is_relative_to(root) for root in roots):
        raise SourceError(
            f"data.source.path {given!r} resolves to {real}, outside the project home {roots[0]}"
            + (f" and the allowed roots {[str(r) for r in roots[1:]]}" if roots[1:] else "")
            + f"; {_CONFINEMENT_RULE}"
        )
    if real.is_dir():
        raise SourceError(
            f"data.source.path {given!r}: {real} is a directory; rule: the source is one .csv or .parquet file"
        )
    return real


def _opened_path(fd: int) -> Path | None:
    """The path the kernel actually opened (Linux ``/proc``), or None where that is not available."""
    try:
        return Path(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        return None


def _open_source(real: Path, given: str, roots: list[Path]):
    """Open the resolved source for reading; refuse what is not a regular file, not readable, or (a
    folder swapped for a symlink after the check) no longer inside the allowed roots once opened."""
    try:
        # Non-blocking, so a FIFO planted as the source is refused below instead of hanging the run.
        fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except PermissionError:
        raise SourceError(
            f"data.source.path {given!r}: {real} cannot be read (permission denied for uid {os.geteuid()}); "
            "rule: the source must be readable by the user running the pipeline"
        ) from None
    except OSError as exc:
        raise SourceError(f"data.source.path {given!r}: {real} cannot be opened ({exc.strerror})") from None
    opened = _opened_path(fd)
    if opened is not None and not any(opened.is_relative_to(root) for root in roots):
        os.close(fd)
        raise SourceError(f"data.source.path {given!r}: opened {opened}, outside the project home; {_CONFINEMENT_RULE}")
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO or device would hang or never end
        os.close(fd)
        raise SourceError(
            f"data.source.path {given!r}: {real} is not a regular file; rule: the source is one .csv or .parquet file"
        )
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def ingest_source(spec: DataSpec, home: Path, target: Path) -> None:
    """Copy the configured source to ``target`` byte for byte (the default data is exported to CSV).

    The bytes copied come from the file descriptor whose opened path was checked again, so swapping
    the file or a folder for a symlink after the first check cannot redirect the read.
    """
    source = spec.source
    if source.kind == "sklego_arrests":
        # Shipped inside the scikit-lego wheel: no network needed.
        from sklego.datasets import load_arrests

        frame = load_arrests(as_frame=True)
        write_atomic(target, lambda p: frame.to_csv(p, index=False))
        return
    real = resolve_source(spec, home)
    with _open_source(real, source.path or "", allowed_roots(spec, home)) as handle:

        def copy(tmp: Path) -> None:
            with open(tmp, "wb") as out:
                shutil.copyfileobj(handle, out, 1 << 20)

        write_atomic(target, copy)


def source_md5(spec: DataSpec, home: Path) -> str:
    """The MD5 of the confined source, or why it cannot be read (for run identity, never raises)."""
    from mlcomops_assets.lib.files import file_md5

    try:
        real = resolve_source(spec, home)
        with _open_source(real, spec.source.path or "", allowed_roots(spec, home)):
            pass
        return file_md5(real)
    except (SourceError, OSError):
        return "unreadable"


def read_raw(path: Path, spec: DataSpec) -> pd.DataFrame:
    """Read the raw file without trusting it: categories stay strings, numbers are inferred.

    Numbers are left to pandas on purpose: a column of "1,000"-style strings then arrives as text
    and the type rule of the data contract reports it, instead of a parser silently coercing it.
    """
    text_columns = {name: str for name in spec.columns_of_type(ColumnType.CATEGORY, ColumnType.STRING)}
    try:
        if path.suffix.lower() == ".parquet":
            return _labels_as_text(pd.read_parquet(path), list(text_columns))
        # utf-8-sig reads plain UTF-8 too, and drops the byte-order mark spreadsheet exports add.
        encoding = "utf-8-sig" if spec.source.encoding.lower().replace("_", "-") == "utf-8" else spec.source.encoding
        # Text columns are parsed as categories (always strings, as with dtype=str) and handed on as object
        # columns holding the same strings: each distinct string is then one object shared by its rows,
        # where dtype=str makes one object per cell (about 5x the memory at 10M rows, and slower to parse).
        frame = pd.read_csv(
            path,
            sep=spec.source.delimiter,
            encoding=encoding,
            dtype=dict.fromkeys(text_columns, "category"),
            keep_default_na=True,
        )
        return frame.astype({name: "object" for name in text_columns if name in frame.columns})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, ValueError) as exc:
        kind = path.suffix.lstrip(".") or "csv"
        raise SourceError(f"{path.name} is not a readable {kind} file: {_reason(exc)}") from None


def _labels_as_text(frame: pd.DataFrame, text_columns: list[str]) -> pd.DataFrame:
    """Declared category/string columns stored as numbers (a 0/1 label) read as text, as from a CSV file."""
    for name in text_columns:
        if (
            name in frame.columns
            and pd.api.types.is_integer_dtype(frame[name])
            and not pd.api.types.is_bool_dtype(frame[name])
        ):
            frame[name] = frame[name].astype("string").astype("object").where(frame[name].notna(), None)
    return frame


# A quoted value ('2117…', "yes") or a printed array ([…]) in a library's message is data.
_QUOTED = re.compile(r"""'[^']*'|"[^"]*"|\[[^\]]*\]""")


def _reason(exc: BaseException) -> str:
    """Why reading failed, in words that never quote a cell of the file."""
    if isinstance(exc, UnicodeDecodeError):
        # Python's own message prints the offending bytes; offset and reason are enough to find them.
        return (
            f"the {exc.encoding} codec can't decode the bytes at offset {exc.start} ({exc.reason}); "
            "rule: data.source.encoding names the file's encoding"
        )
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    if isinstance(exc, pd.errors.ParserError | pd.errors.EmptyDataError):
        return first  # the tokenizer names line and field counts, not contents
    return _QUOTED.sub("<value>", first)


class _Conversion:
    """The kinds of numbers a column may be declared as, and how a value fails to be one."""

    def __init__(self, name: str, dtype: ColumnType) -> None:
        self.name, self.dtype = name, dtype

    def bad_count(self, column: pd.Series) -> int:
        """How many non-empty values are not numbers of the declared kind (never which ones)."""
        present = column.notna()
        numbers = pd.to_numeric(column.where(present), errors="coerce")
        bad = present & numbers.isna()
        if self.dtype == ColumnType.INTEGER:
            bad |= present & numbers.notna() & (numbers.astype("float64") % 1 != 0)
        return int(bad.sum())

    def error(self, column: pd.Series) -> SourceError:
        kind = "whole numbers" if self.dtype == ColumnType.INTEGER else "numbers"
        return SourceError(
            f"column {self.name!r}: {self.bad_count(column):,} of {int(column.notna().sum()):,} non-empty values are "
            f"not {kind}; rule: data.columns.{self.name}.dtype is {self.dtype.value}"
        )


def typed(frame: pd.DataFrame, spec: DataSpec) -> pd.DataFrame:
    """The kept columns (no ignored or dropped identifier columns), each in the type the policy declares.

    A value that does not convert raises ``SourceError`` with the column, the rule and the count:
    pandas and numpy would quote the value (``Could not convert string '2117…'``), and the data
    contract runs before this, so such a value means the contract and the policy disagree.
    """
    kept = [c for c in spec.kept_columns if c in frame.columns]
    out = frame[kept].copy()
    for name in kept:
        dtype = spec.columns[name].dtype
        column = out[name]
        if dtype in (ColumnType.INTEGER, ColumnType.FLOAT):
            conversion = _Conversion(name, dtype)
            if conversion.bad_count(column):
                raise conversion.error(column)
            numbers = pd.to_numeric(column)
            if dtype == ColumnType.INTEGER:
                out[name] = numbers.astype("Int64" if numbers.isna().any() else "int64")
            else:
                out[name] = numbers.astype("float64")
        else:
            out[name] = column.astype("object")
    return out
