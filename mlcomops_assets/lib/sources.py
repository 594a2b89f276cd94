"""Reading the configured source and the ingested raw file into pandas."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from mlcomops_assets.lib.files import write_atomic
from mlcomops_assets.policy import ColumnType, DataSpec


class SourceError(RuntimeError):
    """The configured source cannot be read; the message says what and where."""


def ingest_source(spec: DataSpec, home: Path, target: Path) -> None:
    """Copy the configured source to ``target`` byte for byte (the default data is exported to CSV)."""
    source = spec.source
    if source.kind == "sklego_arrests":
        # Shipped inside the scikit-lego wheel: no network needed.
        from sklego.datasets import load_arrests

        frame = load_arrests(as_frame=True)
        write_atomic(target, lambda p: frame.to_csv(p, index=False))
        return
    path = (home / source.path).resolve() if source.path else None
    if path is None or not path.is_file():
        raise SourceError(f"data.source.path: file not found: {path}")
    write_atomic(target, lambda p: shutil.copyfile(path, p))


def read_raw(path: Path, spec: DataSpec) -> pd.DataFrame:
    """Read the raw file without trusting it: categories stay strings, numbers are inferred.

    Numbers are left to pandas on purpose: a column of "1,000"-style strings then arrives as text
    and the type rule of the data contract reports it, instead of a parser silently coercing it.
    """
    text_columns = {name: str for name in spec.columns_of_type(ColumnType.CATEGORY, ColumnType.STRING)}
    try:
        if path.suffix.lower() == ".parquet":
            return pd.read_parquet(path)
        # utf-8-sig reads plain UTF-8 too, and drops the byte-order mark spreadsheet exports add.
        encoding = "utf-8-sig" if spec.source.encoding.lower().replace("_", "-") == "utf-8" else spec.source.encoding
        return pd.read_csv(
            path,
            sep=spec.source.delimiter,
            encoding=encoding,
            dtype=text_columns,
            keep_default_na=True,
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError, ValueError) as exc:
        # The first line of the parser's message says what is wrong without quoting the data.
        reason = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        raise SourceError(f"{path.name} is not a readable {path.suffix.lstrip('.') or 'csv'} file: {reason}") from exc


def typed(frame: pd.DataFrame, spec: DataSpec) -> pd.DataFrame:
    """The kept columns (no ignored or dropped identifier columns), each in the type the policy declares."""
    kept = [c for c in spec.kept_columns if c in frame.columns]
    out = frame[kept].copy()
    for name in kept:
        dtype = spec.columns[name].dtype
        if dtype == ColumnType.INTEGER:
            out[name] = out[name].astype("Int64" if out[name].isna().any() else "int64")
        elif dtype == ColumnType.FLOAT:
            out[name] = out[name].astype("float64")
        else:
            out[name] = out[name].astype("object")
    return out
