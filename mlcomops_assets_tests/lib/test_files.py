"""Writes are atomic: a failing writer leaves the previous file complete and no temporary file."""

import pytest

from mlcomops_assets.lib.files import file_md5, write_atomic, write_json


def test_failed_write_keeps_previous_version(tmp_path):
    target = tmp_path / "report.json"
    write_json(target, {"version": 1})
    before = target.read_bytes()

    def broken_writer(path):
        path.write_text('{"version": 2, "trunc')
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        write_atomic(target, broken_writer)
    assert target.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_md5_matches_hashlib_of_bytes(tmp_path):
    import hashlib

    target = tmp_path / "x.bin"
    target.write_bytes(b"abc" * 1_000_000)
    assert file_md5(target) == hashlib.md5(b"abc" * 1_000_000).hexdigest()
