"""Find row-level data in evidence files, whatever format the project wrote them in.

Published evidence must be aggregate: no record of the validated or training data may appear in it.
A text search is blind to most of what the pipeline writes, so every file is opened the way it was
written: pickles and joblib files are loaded and their object graph walked, skops files loaded with
their own type list, Parquet read as a table, zip archives opened member by member, JSON parsed,
HTML and other text tokenized. Every table-shaped thing found (DataFrames, 2-D arrays, lists of
records, vectors) is compared with the rows of reference frames: by column name where it has names,
by position against the raw numeric matrix and any given transformed matrices (a model's scaled,
one-hot features) where it has none. Text is searched for each row's values in column order, with
or without the column names between them (CSV lines, HTML table rows, JSON records).

Only files this project wrote are opened: loading a pickle runs code, so never point this at files
from elsewhere.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

_MAX_DEPTH = 12
_MAX_OBJECTS = 200_000
_TOKEN = re.compile(r"[A-Za-z0-9_.+-]+")
_TAG = re.compile(r"<[^>]+>")
_TEXT_SUFFIXES = {".html", ".htm", ".md", ".txt", ".csv", ".json", ".svg", ".xml", ".yaml", ".yml", ".js", ".css"}


def _norm(value: Any) -> Any:
    """A comparable form: numbers to 9 significant digits, everything else as text."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, float, np.integer, np.floating)):
        number = float(value)
        return float(f"{number:.9g}") if np.isfinite(number) else str(number)
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return "nan"
    return str(value)


def _token(value: Any) -> str:
    """One token as text and reference rows are both compared: numbers by value, not by formatting."""
    text = str(value)
    try:
        number = float(text)
    except ValueError:
        return text
    return f"{number:.9g}" if np.isfinite(number) else text


@dataclass
class RowIndex:
    """The rows of the reference frames, in every form in which a leak could show them."""

    frames: list[pd.DataFrame]
    matrices: list[np.ndarray] = field(default_factory=list)
    # Names a table must share with a reference before its rows are compared by name: all model inputs.
    key_columns: list[str] | None = None

    def __post_init__(self) -> None:
        self._named: list[tuple[list[str], set[tuple]]] = []
        self._positional: dict[int, set[tuple]] = {}
        self._token_rows: set[tuple[str, ...]] = set()
        for frame in self.frames:
            columns = [c for c in (self.key_columns or list(frame.columns)) if c in frame.columns]
            self._named.append((columns, {tuple(_norm(v) for v in row) for row in frame[columns].itertuples(False)}))
            numeric = frame.select_dtypes("number")
            if numeric.shape[1] >= 2:
                self.matrices.append(numeric.to_numpy(dtype=float))
            ordered = list(frame.columns)
            for row in frame.itertuples(index=False):
                values = [_token(v) for v in row]
                self._token_rows.add(tuple(values))
                self._token_rows.add(tuple(t for c, v in zip(ordered, values, strict=True) for t in (str(c), v)))
                by_name = sorted(zip(ordered, values, strict=True))
                self._token_rows.add(tuple(t for c, v in by_name for t in (str(c), v)))
        for matrix in self.matrices:
            rows = self._positional.setdefault(matrix.shape[1], set())
            rows.update(tuple(_norm(v) for v in row) for row in matrix)
        self._lengths = sorted({len(r) for r in self._token_rows})

    def table_hits(self, table: pd.DataFrame | np.ndarray) -> int:
        """How many rows of ``table`` are rows of a reference (by name or by position)."""
        hits = 0
        if isinstance(table, pd.DataFrame):
            for columns, rows in self._named:
                if columns and set(columns) <= set(map(str, table.columns)):
                    renamed = table.rename(columns=str)
                    hits += sum(tuple(_norm(v) for v in r) in rows for r in renamed[columns].itertuples(False))
            table = table.select_dtypes("number").to_numpy(dtype=float) if not table.empty else np.empty((0, 0))
        array = np.asarray(table)
        if array.dtype.kind not in "biuf" or array.size == 0:
            return hits
        array = array.reshape(1, -1) if array.ndim == 1 else array
        if array.ndim != 2:
            return hits
        rows = self._positional.get(array.shape[1])
        if rows:
            hits += sum(tuple(_norm(v) for v in r) in rows for r in array)
        return hits

    def text_hits(self, text: str) -> int:
        """How many reference rows appear in ``text`` as consecutive tokens (markup removed)."""
        tokens = [_token(t) for t in _TOKEN.findall(_TAG.sub(" ", text))]
        found = set()
        for length in self._lengths:
            for start in range(len(tokens) - length + 1):
                window = tuple(tokens[start : start + length])
                if window in self._token_rows:
                    found.add(window)
        return len(found)


def _walk(obj: Any) -> Iterator[tuple[str, Any]]:
    """Every table-shaped value reachable from ``obj`` (attributes, containers, state), with its path."""
    seen: set[int] = set()
    stack: list[tuple[str, Any, int]] = [("", obj, 0)]
    while stack and len(seen) < _MAX_OBJECTS:
        where, item, depth = stack.pop()
        if id(item) in seen or depth > _MAX_DEPTH:
            continue
        seen.add(id(item))
        if isinstance(item, (pd.DataFrame, np.ndarray)):
            if isinstance(item, np.ndarray) and item.dtype == object:
                stack.extend((f"{where}[{i}]", v, depth + 1) for i, v in enumerate(item.ravel()[:10_000]))
                continue
            yield where, item
        elif isinstance(item, pd.Series):
            yield where, item.to_frame().T
        elif isinstance(item, dict):
            if (
                item
                and all(isinstance(k, str) for k in item)
                and not any(isinstance(v, (dict, list, tuple, np.ndarray, pd.DataFrame)) for v in item.values())
            ):
                yield where, pd.DataFrame([item])  # one record
            stack.extend((f"{where}.{k}", v, depth + 1) for k, v in item.items())
        elif isinstance(item, (list, tuple, set, frozenset)):
            items = list(item)
            if items and all(isinstance(v, dict) for v in items):
                yield where, pd.DataFrame(items)  # a list of records
            elif items and all(isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in items):
                yield where, np.asarray(items, dtype=float)  # a vector: one row by position
            elif items and all(isinstance(v, (list, tuple)) for v in items):
                matrix = _as_matrix(items)
                if matrix is not None:
                    yield where, matrix
            stack.extend((f"{where}[{i}]", v, depth + 1) for i, v in enumerate(items[:10_000]))
        elif (
            isinstance(item, (str, bytes, int, float, bool, type(None), np.generic))
            or callable(item)
            and not hasattr(item, "__dict__")
        ):
            continue
        else:
            state = getattr(item, "__dict__", None)
            if state is None and hasattr(item, "__getstate__"):
                try:
                    state = item.__getstate__()
                except Exception:  # noqa: BLE001 (an object that cannot give its state holds nothing to walk)
                    state = None
            if isinstance(state, dict):
                stack.extend((f"{where}.{k}", v, depth + 1) for k, v in state.items())
            for slot in getattr(type(item), "__slots__", ()) or ():
                if hasattr(item, slot):
                    stack.append((f"{where}.{slot}", getattr(item, slot), depth + 1))


def _as_matrix(rows: list) -> np.ndarray | None:
    try:
        return np.asarray(rows, dtype=float)
    except (TypeError, ValueError):  # ragged or not numeric: walked element by element instead
        return None


def _parse_json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:  # not JSON after all: searched as text only
        return None


def _load_skops(data: bytes) -> Any:
    import skops.io as sio

    return sio.loads(data, trusted=sio.get_untrusted_types(data=data))


def _objects(name: str, data: bytes) -> Iterator[tuple[str, Any]]:
    """The decoded contents of one file (or zip member): objects to walk, or text to search."""
    suffix = Path(name).suffix.lower()
    if suffix == ".parquet":
        yield name, pd.read_parquet(io.BytesIO(data))
    elif suffix in (".pkl", ".pickle", ".joblib"):
        import joblib

        yield name, joblib.load(io.BytesIO(data))
    elif suffix == ".skops":
        yield name, _load_skops(data)
    elif suffix == ".npy":
        yield name, np.load(io.BytesIO(data), allow_pickle=False)
    elif suffix == ".npz" or zipfile.is_zipfile(io.BytesIO(data)):
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for member in archive.namelist():
                yield from _objects(f"{name}!{member}", archive.read(member))
    elif suffix == ".json":
        text = data.decode("utf-8", errors="replace")
        yield name, text
        parsed = _parse_json(text)
        if parsed is not None:
            yield name, parsed
    elif suffix in _TEXT_SUFFIXES or not _looks_binary(data):
        yield name, data.decode("utf-8", errors="replace")


def _looks_binary(data: bytes) -> bool:
    return b"\x00" in data[:8192]


@dataclass(frozen=True)
class Finding:
    """A place in an evidence file where reference rows were found."""

    where: str
    rows: int

    def __str__(self) -> str:
        return f"{self.where}: {self.rows} row(s) of the reference data"


def scan_file(path: Path, index: RowIndex, reader: Callable[[Path], bytes] = Path.read_bytes) -> list[Finding]:
    """Every place in ``path`` that holds rows of the reference data."""
    findings = []
    for name, content in _objects(str(path), reader(path)):
        if isinstance(content, str):
            hits = index.text_hits(content)
            if hits:
                findings.append(Finding(f"{name} (text)", hits))
            continue
        for where, table in _walk(content):
            hits = index.table_hits(table)
            if hits:
                findings.append(Finding(f"{name}{where or ''}", hits))
    return findings


def texts_of(path: Path) -> list[tuple[str, bytes]]:
    """The text a file holds, whatever its format, for a search of identifier values: text as is,
    Parquet and every table reached in a pickle, joblib or skops object as CSV, every string in such
    an object graph, zip members one by one."""
    out: list[tuple[str, bytes]] = []
    as_text: set[str] = set()
    for name, content in _objects(str(path), path.read_bytes()):
        if isinstance(content, str):
            out.append((name, content.encode()))
            as_text.add(name)
            continue
        if name in as_text:  # parsed JSON: its strings are already in the text
            continue
        if isinstance(content, pd.DataFrame):
            out.append((name, content.to_csv(index=False).encode()))
            continue
        out.extend((f"{name}{where}", _table_text(table)) for where, table in _walk(content))
        out.append((f"{name} (strings)", "\n".join(_strings(content)).encode()))
    return out


def _table_text(table: pd.DataFrame | np.ndarray) -> bytes:
    if isinstance(table, pd.DataFrame):
        return table.to_csv(index=False).encode()
    array = np.asarray(table)
    if array.dtype.names:  # a structured array (e.g. tree nodes): one column per field
        return pd.DataFrame.from_records(array.ravel()).to_csv(index=False).encode()
    array = np.atleast_2d(array)
    frame = pd.DataFrame(array.reshape(array.shape[0], -1))  # 3-D and beyond: one row per first index
    return frame.to_csv(index=False).encode()


def _strings(obj: Any) -> Iterator[str]:
    """Every string reachable from ``obj``: dictionary keys and values, attributes, object arrays."""
    seen: set[int] = set()
    stack: list[tuple[Any, int]] = [(obj, 0)]
    while stack and len(seen) < _MAX_OBJECTS:
        item, depth = stack.pop()
        if isinstance(item, str):
            yield item
            continue
        if isinstance(item, bytes):
            yield item.decode("utf-8", errors="replace")
            continue
        if id(item) in seen or depth > _MAX_DEPTH:
            continue
        seen.add(id(item))
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for pair in item.items() for v in pair)
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend((v, depth + 1) for v in item)
        elif isinstance(item, np.ndarray):
            if item.dtype.kind in "OUS":
                stack.extend((v, depth + 1) for v in item.ravel()[:100_000])
        elif isinstance(item, (pd.DataFrame, pd.Series, pd.Index)):
            yield item.to_csv() if not isinstance(item, pd.Index) else "\n".join(map(str, item))
        elif isinstance(getattr(item, "__dict__", None), dict):
            stack.extend((v, depth + 1) for v in item.__dict__.values())


def scan_folder(folder: Path, index: RowIndex) -> tuple[list[Finding], int]:
    """Scan every file below ``folder``; returns the findings and how many files were opened."""
    files = sorted(p for p in folder.rglob("*") if p.is_file())
    return [f for p in files for f in scan_file(p, index)], len(files)
