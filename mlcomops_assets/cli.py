"""The ``mlcomops`` command line: one entry point, one sub-app per area (``mlcomops policy ...``).

Kept thin on purpose: each command parses its options and calls a library module, imported inside
the command so ``mlcomops --help`` does not pay for pandas. More areas (``serve``, ``receipts verify``)
are added as further sub-apps with ``app.add_typer``.

Exit codes: 0 ok; 1 a check found problems; 2 a usage or policy error (``POLICY_ERROR_EXIT_CODE``,
like argparse and click for a wrong option).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

# Rich's pretty tracebacks print local variables, which may hold rows of the data: keep them plain.
app = typer.Typer(
    name="mlcomops",
    help="Compliant ML with Dagster: governance policy and audit tools.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
policy_app = typer.Typer(
    help="Draft the governance policy (governance.yaml) from a data file, and check it against its data.",
    no_args_is_help=True,
)
app.add_typer(policy_app, name="policy")
audit_app = typer.Typer(
    help="Verify signed, hash-chained audit bundles offline (data/audit/<model>/v<version>/).",
    no_args_is_help=True,
)
app.add_typer(audit_app, name="audit")

PROBLEMS_EXIT_CODE = 1


def _fail(message: str) -> typer.Exit:
    """Print ``message`` as an error and return the exit for a usage or policy error."""
    from mlcomops_assets.policy import POLICY_ERROR_EXIT_CODE

    typer.echo(f"error: {message}", err=True)
    return typer.Exit(POLICY_ERROR_EXIT_CODE)


@policy_app.command("init")
def policy_init(
    path: Annotated[Path, typer.Argument(help="The data file (.csv or .parquet) to infer the policy from.")],
    target: Annotated[
        str | None, typer.Option("--target", help="The column holding the decision to learn (two labels).")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Where to write the draft (default: governance.yaml in the project home)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing output file.")] = False,
) -> None:
    """Write a commented draft policy inferred from PATH: roles, types, ranges, labels and missing shares.

    Review every line marked REVIEW or TODO, then run `mlcomops policy check`.
    """
    from mlcomops_assets.lib.files import write_atomic
    from mlcomops_assets.lib.policy_draft import DraftError, draft_from_file
    from mlcomops_assets.settings import POLICY_FILE_NAME, default_home

    home = default_home()
    output = output or home / POLICY_FILE_NAME
    if output.exists() and not force:
        raise _fail(f"{output} already exists; pass --force to overwrite it")
    try:
        text = draft_from_file(path, home, target=target)
    except DraftError as exc:
        raise _fail(str(exc)) from None
    output.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(output, lambda tmp: tmp.write_text(text, encoding="utf-8"))
    reviews = sum("REVIEW" in line or "TODO" in line for line in text.splitlines())
    typer.echo(f"wrote {output}: {reviews} lines marked REVIEW or TODO to decide on; then run `mlcomops policy check`")


@policy_app.command("check")
def policy_check(
    policy: Annotated[
        Path | None,
        typer.Option("--policy", "-p", help="The policy file (default: governance.yaml in the project home)."),
    ] = None,
) -> None:
    """Validate the policy, then check it against its source data and list every problem at once.

    The source path is resolved against the project home (MLCOMOPS_HOME), as in the pipeline.
    """
    from mlcomops_assets.lib.policy_check import check_policy, report
    from mlcomops_assets.policy import PolicyError, load_policy
    from mlcomops_assets.settings import POLICY_FILE_NAME, default_home

    home = default_home()
    path = policy or home / POLICY_FILE_NAME
    try:
        loaded = load_policy(path)
    except PolicyError as exc:
        raise _fail(str(exc)) from None
    result = check_policy(loaded, home)
    typer.echo(report(result, path))
    if result.problems:
        raise typer.Exit(PROBLEMS_EXIT_CODE)


@audit_app.command("verify")
def audit_verify(
    path: Annotated[
        Path,
        typer.Argument(
            help="A bundle (its folder, zip or manifest.json), a model's folder of v<N> bundles, or data/audit."
        ),
    ],
    public_key: Annotated[
        str | None,
        typer.Option(
            "--public-key",
            help="The trusted signer: a key file (PEM public or private key, or hex) or the key as hex or base64.",
        ),
    ] = None,
) -> None:
    """Rehash every item, find missing and unlisted files, check signatures and the chain; a verdict per
    item (ok, CHANGED, MISSING, UNLISTED) and per chain link. Works offline; exit 1 if anything fails.

    Without --public-key a signature is only checked against the key the manifest carries, which
    shows the bundle is intact but not who signed it.
    """
    from mlcomops_assets.lib.audit_bundle import parse_public_key, report, verify_path

    try:
        trusted = parse_public_key(public_key) if public_key is not None else None
    except (OSError, ValueError) as exc:
        raise _fail(f"--public-key: {exc}") from None
    if not path.exists():
        raise _fail(f"{path} does not exist")
    results = verify_path(path, trusted)
    typer.echo("\n\n".join(report(result) for result in results))
    if not all(result.ok for result in results):
        raise typer.Exit(PROBLEMS_EXIT_CODE)


def main() -> None:
    """Console-script entry point (``mlcomops``) and ``python -m mlcomops_assets.cli``."""
    app(prog_name="mlcomops")


if __name__ == "__main__":
    main()
