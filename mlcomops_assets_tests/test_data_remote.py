"""`mlcomops data push` / `pull`: data versions through real git and DVC to the S3 server and back.

The object store is moto's S3 server (``team_services``), the stand-in for cloud storage; git, DVC
(its own venv) and dvc-s3's HTTP client are real. The workspace is committed the way `make run` does
it (a stage's outputs, `dvc commit --force`), then the cache and the files are wiped and pulled back.
"""

import hashlib
import uuid
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mlcomops_assets.cli import app
from mlcomops_assets.data_remote import OBJECT_STORE_ENV, S3_ENDPOINT_ENV, DvcRemote
from mlcomops_assets_tests.conftest import dvc_executable, run


def _md5s(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.md5(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()
    }


def _commit(repo: Path, message: str) -> None:
    run(["git", "add", "-A"], repo)
    run(["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", message], repo)


@pytest.fixture
def repo(tmp_path) -> Path:
    """A git + DVC repository whose one stage wrote data/raw (binary and text) and was `dvc commit`ted."""
    repo = tmp_path / "project"
    raw = repo / "data" / "raw"
    raw.mkdir(parents=True)
    (raw / "source.csv").write_text("age,colour\n" + "".join(f"{20 + i % 50},{'ab'[i % 2]}\n" for i in range(5000)))
    (raw / "blob.bin").write_bytes(bytes(range(256)) * 400)
    stage = {"cmd": "true", "outs": ["data/raw"]}
    (repo / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"ingest": stage}}))
    run(["git", "init", "-q"], repo)
    run([dvc_executable(), "init", "-q"], repo)
    run([dvc_executable(), "config", "core.analytics", "false"], repo)
    run([dvc_executable(), "commit", "--force", "--quiet"], repo)  # as `make run` does
    _commit(repo, "data v1")
    return repo


@pytest.fixture
def store(s3_env, monkeypatch) -> str:
    """A fresh prefix of the session's bucket as the team's object store, endpoint and keys in the env."""
    url = s3_env.url(f"team-{uuid.uuid4().hex[:8]}")
    monkeypatch.setenv(OBJECT_STORE_ENV, url)
    monkeypatch.setenv(S3_ENDPOINT_ENV, s3_env.endpoint_url)
    return url


def _cli(*args: str):
    return CliRunner().invoke(app, list(args))


def test_push_wipe_pull_restores_the_same_bytes(repo, store, s3_env):
    before = _md5s(repo / "data" / "raw")
    committed_config = (repo / ".dvc" / "config").read_text()

    pushed = _cli("data", "push", "--repo", str(repo))
    assert pushed.exit_code == 0, pushed.output
    prefix = store.removeprefix(f"s3://{s3_env.bucket}/") + "/dvc/files/md5/"
    keys = s3_env.keys(prefix)
    # Both files and the directory listing DVC stores for a directory output.
    assert len(keys) == 3 and any(k.endswith(".dir") for k in keys)

    # The cache and the workspace copy are gone: only the object store holds the data now.
    run(["rm", "-rf", ".dvc/cache", "data/raw"], repo)
    assert not (repo / "data" / "raw").exists()
    pulled = _cli("data", "pull", "--repo", str(repo))
    assert pulled.exit_code == 0, pulled.output
    assert _md5s(repo / "data" / "raw") == before
    assert "data/raw" not in run([dvc_executable(), "status"], repo).stdout

    # The committed config is untouched and git sees nothing new: the remote lives in config.local.
    assert (repo / ".dvc" / "config").read_text() == committed_config
    assert run(["git", "status", "--porcelain"], repo).stdout == ""
    local = (repo / ".dvc" / "config.local").read_text()
    assert store + "/dvc" in local and s3_env.endpoint_url in local
    # Credentials came from the environment only: no file of the repository (git's included) holds them.
    secrets = [s3_env.secret_access_key.encode(), s3_env.access_key_id.encode()]
    written = [p for p in repo.rglob("*") if p.is_file() and any(s in p.read_bytes() for s in secrets)]
    assert written == []


def test_a_repository_where_git_would_track_the_local_config_is_refused(repo, store, s3_env):
    ignore = repo / ".dvc" / ".gitignore"
    ignore.write_text(ignore.read_text().replace("/config.local\n", ""))
    result = _cli("data", "push", "--repo", str(repo))
    assert result.exit_code == 2 and "not ignored by git" in result.output
    assert not (repo / ".dvc" / "config.local").exists()
    assert s3_env.keys(store.removeprefix(f"s3://{s3_env.bucket}/")) == []


def test_dvc_failure_is_reported_with_its_message(repo, s3_env, monkeypatch):
    """A bucket that does not exist: DVC's own error reaches the user, exit 1 (not a usage error)."""
    monkeypatch.setenv(OBJECT_STORE_ENV, "s3://no-such-bucket-mlcomops/x")
    monkeypatch.setenv(S3_ENDPOINT_ENV, s3_env.endpoint_url)
    result = _cli("data", "push", "--repo", str(repo))
    assert result.exit_code == 1 and "dvc push" in result.output


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, f"{OBJECT_STORE_ENV} is not set"),
        ({OBJECT_STORE_ENV: "/mnt/share"}, "must be an s3://bucket/prefix URL"),
    ],
)
def test_the_remote_comes_from_the_profile_settings(env, message):
    with pytest.raises(Exception, match=message):
        DvcRemote.from_env(env)


def test_remote_url_and_endpoint():
    remote = DvcRemote.from_env({OBJECT_STORE_ENV: "s3://bucket/team/", S3_ENDPOINT_ENV: "http://minio:9000"})
    assert remote == DvcRemote("s3://bucket/team/dvc", "http://minio:9000")
    assert DvcRemote.from_env({OBJECT_STORE_ENV: "s3://bucket"}).endpoint_url is None


def test_not_a_dvc_repository(tmp_path, store):
    result = _cli("data", "pull", "--repo", str(tmp_path))
    assert result.exit_code == 2 and "not a DVC repository" in result.output
