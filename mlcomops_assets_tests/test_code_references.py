"""Every asset names the file and line of its code, locally or as a link at the checked-out commit."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import dagster as dg
import pytest

from mlcomops_assets.code_references import SOURCE_ROOT, git_web_url, source_control, with_code_references
from mlcomops_assets.definitions import ALL_ASSETS, BATCH_ASSETS, defs

CODE_REFERENCES = "dagster/code_references"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def _check_points_at_function(path: Path, line: int, key: dg.AssetKey) -> None:
    """``path:line`` is the asset's decorator (or ``def``) in the package, with a function below it."""
    assert path.is_file(), f"{key.to_user_string()}: {path} does not exist"
    assert path.resolve().is_relative_to(SOURCE_ROOT / "mlcomops_assets"), path
    lines = path.read_text().splitlines()
    assert 1 <= line <= len(lines), f"{path}:{line} is past the end of the file"
    assert lines[line - 1].lstrip().startswith(("@", "def ")), f"{path}:{line} is not a decorator or def"
    assert any(text.lstrip().startswith("def ") for text in lines[line - 1 :]), f"{path}:{line}"


def _references(spec: dg.AssetSpec) -> list:
    value = spec.metadata.get(CODE_REFERENCES)
    assert value is not None, f"{spec.key.to_user_string()} has no code reference"
    return value.code_references


def test_every_asset_references_an_existing_file_and_line():
    git = source_control()
    specs = list(defs.resolve_all_asset_specs())
    assert len(specs) >= len(ALL_ASSETS) + len(BATCH_ASSETS)
    for spec in specs:
        (reference,) = _references(spec)
        if git is None:
            # No GitHub/GitLab origin (this checkout, copies, CI clones): the local file and line.
            assert isinstance(reference, dg.LocalFileCodeReference)
            assert reference.line_number is not None
            _check_points_at_function(Path(reference.file_path), reference.line_number, spec.key)
        else:
            url, commit = git
            assert isinstance(reference, dg.UrlCodeReference)
            match = re.fullmatch(rf"{re.escape(url)}/tree/{commit}/(?P<path>.+)#L(?P<line>\d+)", reference.url)
            assert match, reference.url
            _check_points_at_function(SOURCE_ROOT / match["path"], int(match["line"]), spec.key)


def test_a_reference_names_the_asset_function():
    (spec,) = [s for s in defs.resolve_all_asset_specs() if s.key == dg.AssetKey("champion_model")]
    (reference,) = _references(spec)
    text = reference.file_path if isinstance(reference, dg.LocalFileCodeReference) else reference.url
    assert "mlcomops_assets/assets/promotion.py" in text


def test_with_a_github_origin_references_link_to_the_commit():
    referenced = with_code_references(
        dg.map_asset_specs(lambda s: s, ALL_ASSETS), git=("https://github.com/acme/mlcomops", COMMIT)
    )
    for assets_def in referenced:
        for spec in assets_def.specs:
            (reference,) = spec.metadata[CODE_REFERENCES].code_references
            assert isinstance(reference, dg.UrlCodeReference)
            prefix = f"https://github.com/acme/mlcomops/tree/{COMMIT}/mlcomops_assets/assets/"
            assert reference.url.startswith(prefix), reference.url
            path, line = reference.url.removeprefix(f"https://github.com/acme/mlcomops/tree/{COMMIT}/").split("#L")
            _check_points_at_function(SOURCE_ROOT / path, int(line), spec.key)


@pytest.mark.parametrize(
    ("remote", "url"),
    [
        ("git@github.com:acme/mlcomops.git", "https://github.com/acme/mlcomops"),
        ("https://github.com/acme/mlcomops.git", "https://github.com/acme/mlcomops"),
        ("https://user:secret-token@github.com/acme/mlcomops", "https://github.com/acme/mlcomops"),
        ("ssh://git@gitlab.example.org:2222/group/sub/mlcomops.git", "https://gitlab.example.org/group/sub/mlcomops"),
        ("https://git.example.org/acme/mlcomops.git", None),  # Dagster links to GitHub and GitLab only
        ("/srv/git/mlcomops.git", None),
        ("../mlcomops", None),
    ],
)
def test_git_web_url(remote, url):
    assert git_web_url(remote) == url


def test_a_repository_without_remote_keeps_local_references(tmp_path):
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    assert source_control(tmp_path) is None
    # Not a repository at all (a copied project, an unpacked release): local references, no error.
    assert source_control(tmp_path / "missing") is None
