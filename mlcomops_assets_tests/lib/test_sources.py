"""The configured source is confined to the project home (or allowed folders), and no message from
reading or converting it quotes a cell value (issue 11, item 6)."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from mlcomops_assets.lib.sources import SourceError, ingest_source, read_raw, typed
from mlcomops_assets.policy import ColumnType, DataSpec, parse_policy
from mlcomops_assets_tests.conftest import default_policy, materialize

CSV = b"released,colour,year,age,sex,employed,citizen,checks\nYes,White,2000,25,Male,Yes,Yes,1\n"
NOBODY = 65534


def _spec(path: str, allowed_roots: list[str] | None = None) -> DataSpec:
    raw = default_policy()
    raw["data"]["source"] = {
        "kind": "file",
        "path": path,
        **({"allowed_roots": allowed_roots} if allowed_roots else {}),
    }
    return parse_policy(raw).data


@pytest.fixture
def home(tmp_path: Path) -> Path:
    (tmp_path / "home" / "in").mkdir(parents=True)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.csv").write_bytes(CSV)
    return tmp_path / "home"


def _refused(spec: DataSpec, home: Path) -> str:
    target = home / "data" / "raw" / "source.csv"
    with pytest.raises(SourceError) as info:
        ingest_source(spec, home, target)
    assert not target.exists(), "a refused source must not be ingested"
    return str(info.value)


def test_a_file_inside_the_home_is_copied_byte_for_byte(home):
    (home / "in" / "data.csv").write_bytes(CSV)
    (home / "in" / "link.csv").symlink_to(home / "in" / "data.csv")  # a symlink that stays inside is fine
    for name in ("data.csv", "link.csv"):
        target = home / "data" / "raw" / "source.csv"
        ingest_source(_spec(f"in/{name}"), home, target)
        assert target.read_bytes() == CSV


def test_a_symlink_pointing_outside_the_home_is_refused(home):
    (home / "in" / "data.csv").symlink_to(home.parent / "outside" / "secret.csv")
    message = _refused(_spec("in/data.csv"), home)
    assert "data.source.path 'in/data.csv' resolves to" in message and "secret.csv" in message
    assert "outside the project home" in message and "data.source.allowed_roots" in message


def test_a_relative_path_climbing_out_of_the_home_is_refused(home):
    message = _refused(_spec("../outside/secret.csv"), home)
    assert "outside the project home" in message


def test_an_allowed_root_admits_the_folder_it_names(home):
    spec = _spec("../outside/secret.csv", allowed_roots=["../outside"])
    target = home / "data" / "raw" / "source.csv"
    ingest_source(spec, home, target)
    assert target.read_bytes() == CSV
    target.unlink()
    # ... and only that folder: a sibling of it stays outside.
    (home.parent / "elsewhere").mkdir()
    (home.parent / "elsewhere" / "x.csv").write_bytes(CSV)
    message = _refused(_spec("../elsewhere/x.csv", allowed_roots=["../outside"]), home)
    assert "outside" in message and "allowed roots" in message


def test_a_symlink_loop_is_refused(home):
    (home / "in" / "a.csv").symlink_to(home / "in" / "b.csv")
    (home / "in" / "b.csv").symlink_to(home / "in" / "a.csv")
    message = _refused(_spec("in/a.csv"), home)
    assert "symlink loop" in message and "in/a.csv" in message


def test_a_directory_and_a_fifo_are_refused(home):
    (home / "in" / "dir.csv").mkdir()
    assert "is a directory" in _refused(_spec("in/dir.csv"), home)
    os.mkfifo(home / "in" / "pipe.csv")
    assert "is not a regular file" in _refused(_spec("in/pipe.csv"), home)


def test_the_opened_file_is_checked_again(home):
    """Between the check and the open, a folder of the path may be swapped for a symlink; the path
    the kernel opened is confined again (this calls the open with a path that now leads outside)."""
    from mlcomops_assets.lib.sources import _open_source

    (home / "in" / "swapped").symlink_to(home.parent / "outside")
    with pytest.raises(SourceError, match="outside the project home"):
        _open_source(home / "in" / "swapped" / "secret.csv", "in/swapped/secret.csv", [home.resolve()])


def test_a_missing_file_keeps_its_message(home):
    assert _refused(_spec("in/none.csv"), home).startswith("data.source.path: file not found")


def _ingest_as(uid: int, spec: DataSpec, home: Path) -> str:
    """Run ``ingest_source`` in a forked child whose uid and gid are ``uid`` (``os.setuid``, so the
    child cannot regain root); return the child's ``SourceError`` message, or a description of what
    else happened. A fork, not a new interpreter: this venv's Python lives under /root, which nobody
    may not enter."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: drop privileges for good, try the read, report, exit without cleanup
        os.close(read_end)
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            ingest_source(spec, home, home / "data" / "raw" / "source.csv")
            outcome = "ingested"
        except SourceError as exc:
            outcome = f"SourceError: {exc}"
        except BaseException as exc:  # noqa: BLE001 (reported to the parent, which fails the test)
            outcome = f"unexpected {type(exc).__name__}: {exc}"
        os.write(write_end, outcome.encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        outcome = pipe.read().decode()
    os.waitpid(pid, 0)
    return outcome


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to nobody needs root; as a user, chmod 000 already works")
def test_an_unreadable_file_is_refused_for_a_user_without_root_rights():
    """Tests run as root, which reads any file: the read runs in a forked child that set its uid to
    nobody, on a file only root may read."""
    home = Path(tempfile.mkdtemp(prefix="mlcomops-unreadable-"))  # pytest's tmp dirs are 0700: nobody can't enter
    try:
        home.chmod(0o755)
        (home / "in").mkdir(mode=0o755)
        source = home / "in" / "data.csv"
        source.write_bytes(CSV)
        source.chmod(0o600)
        outcome = _ingest_as(NOBODY, _spec("in/data.csv"), home)
        assert outcome.startswith("SourceError: "), outcome
        assert "'in/data.csv'" in outcome and str(source) in outcome
        assert f"permission denied for uid {NOBODY}" in outcome and "must be readable" in outcome
        source.chmod(0o644)  # the same file, readable: the child ingests it, so the refusal was the mode
        (home / "data").mkdir()
        (home / "data").chmod(0o777)  # mkdir's mode is cut by the umask
        assert _ingest_as(NOBODY, _spec("in/data.csv"), home) == "ingested"
    finally:
        shutil.rmtree(home)


def test_reading_errors_do_not_quote_the_data(tmp_path, policy):
    """A wrongly encoded name is reported by its byte offset and the rule, never by its text."""
    path = tmp_path / "source.csv"
    path.write_bytes(CSV + "No,Black,2001,30,Female,No,No,0,Zoë Müller-Secret\n".encode("latin-1"))
    with pytest.raises(SourceError) as info:
        read_raw(path, policy.data)
    message = str(info.value)
    assert "utf-8 codec can't decode the bytes at offset" in message and "rule: data.source.encoding" in message
    assert "0xeb" not in message.lower()  # Python's own message would print the byte
    assert "Secret" not in message and "Zo" not in message


def test_conversion_errors_name_column_rule_and_count_not_values(policy):
    frame = pd.DataFrame(
        {
            "released": ["Yes"] * 4,
            "colour": ["White"] * 4,
            "year": [2000, 2001, 2002, 2000],
            "age": ["21175551234", "yes", "30", "2.5"],
            "sex": ["Male"] * 4,
            "employed": ["Yes"] * 4,
            "citizen": ["Yes"] * 4,
            "checks": [1, 2, 3, 4],
        }
    )
    # What pandas itself would say: the value is in the message.
    with pytest.raises(ValueError, match="yes"):
        frame["age"].astype("int64")
    with pytest.raises(SourceError) as info:
        typed(frame, policy.data)
    message = str(info.value)
    assert (
        message
        == "column 'age': 2 of 4 non-empty values are not whole numbers; rule: data.columns.age.dtype is integer"
    )
    assert "yes" not in message and "2117" not in message


def test_good_values_convert_to_the_declared_types(policy):
    frame = pd.DataFrame(
        {"released": ["Yes", "No"], "colour": ["White", "Black"], "year": ["2000", "2001"], "age": [25.0, None],
         "sex": ["Male", "Female"], "employed": ["Yes", "No"], "citizen": ["Yes", "No"], "checks": [1, 2]}
    )  # fmt: skip
    out = typed(frame, policy.data)
    assert str(out["year"].dtype) == "int64" and out["year"].tolist() == [2000, 2001]
    assert str(out["age"].dtype) == "Int64" and out["age"].isna().tolist() == [False, True]
    assert out["colour"].dtype == object


def _tree_hashes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_end_to_end_a_source_outside_the_home_fails_the_run_readably(default_run, tmp_path, monkeypatch):
    """In a copy of a home where the whole graph ran, the policy's source becomes a symlink out of
    the home: the run fails at ingestion with the path and the rule, and every data layer is unchanged."""
    original, first, _ = default_run
    assert first.success
    home = tmp_path / "home"
    shutil.copytree(original, home, symlinks=True)
    outside = tmp_path / "outside.csv"
    shutil.copyfile(home / "data" / "raw" / "source.csv", outside)
    (home / "inbox").mkdir()
    (home / "inbox" / "arrests.csv").symlink_to(outside)
    raw = yaml.safe_load((home / "governance.yaml").read_text())
    raw["data"]["source"] = {"kind": "file", "path": "inbox/arrests.csv"}
    (home / "governance.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    before = _tree_hashes(home / "data")
    with materialize(home) as (result, _):
        assert not result.success
        assert result.get_asset_materialization_events() == []
        (failure,) = result.get_step_failure_events()
        assert failure.step_key == "raw_data"
        message = failure.event_specific_data.error.message
    assert "data.source.path 'inbox/arrests.csv' resolves to" in message and "outside the project home" in message
    assert "rule: data.source.path must resolve" in message
    assert _tree_hashes(home / "data") == before


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_a_0_1_label_reads_as_the_labels_the_policy_declares(tmp_path, suffix):
    """YAML's [0, 1] and a file's integers are the same labels: text, as the contract compares them."""
    raw = default_policy()
    raw["data"]["source"] = {"kind": "file", "path": f"source{suffix}"}
    raw["data"]["columns"]["released"] = {"role": "target", "dtype": "integer", "allowed_values": [0, 1]}
    raw["data"]["positive_label"] = 1
    spec = parse_policy(raw).data
    frame = pd.DataFrame({"released": [0, 1, 1, 0], "checks": [1, 2, 3, 4]})
    path = tmp_path / f"source{suffix}"
    frame.to_csv(path, index=False) if suffix == ".csv" else frame.to_parquet(path)
    read = read_raw(path, spec)
    assert read["released"].tolist() == ["0", "1", "1", "0"]
    assert set(read["released"]) <= set(spec.columns["released"].allowed_values)
    assert pd.api.types.is_integer_dtype(read["checks"])  # declared numbers stay numbers


def test_text_columns_read_as_shared_strings_equal_a_plain_text_read(tmp_path, policy):
    """Reading text columns through categories (one object per distinct string, for memory at 10M rows)
    gives exactly what reading them as str gives: same values, same missing cells, same dtypes."""
    path = tmp_path / "source.csv"
    path.write_text(
        "released,colour,year,age,sex,employed,citizen,checks\n"
        "Yes,White,2000,25,Male,Yes,Yes,1\n"
        "No, Black ,2001,30,,No,NA,0\n"
        '"Yes",01,2000,,Female,1.0,nan,2\n'
        'No,"Wh,ite",1999,41,Male,,No,\n'
        "Yes,Zoë,2002,19,Male,Yes,Yes,3\n",
        encoding="utf-8",
    )
    text = dict.fromkeys(policy.data.columns_of_type(ColumnType.CATEGORY, ColumnType.STRING), str)
    plain = pd.read_csv(path, dtype=text, encoding="utf-8-sig", keep_default_na=True)
    read = read_raw(path, policy.data)
    pd.testing.assert_frame_equal(read, plain)
    assert read["colour"].tolist()[1:3] == [" Black ", "01"]  # text kept as written, numbers as text
    assert read["sex"].isna().tolist() == [False, True, False, False, False]
    shared = read["released"].tolist()
    assert shared[0] is shared[2]  # one object per distinct string
