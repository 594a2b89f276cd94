"""The ``mlcomops`` command line: one entry point, one sub-app per area (``mlcomops policy ...``).

Kept thin on purpose: each command parses its options and calls a library module, imported inside
the command so ``mlcomops --help`` does not pay for pandas. ``mlcomops serve`` starts the scoring
service; ``mlcomops receipts verify`` checks its hash-chained decision log (docs/serving.md).

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
    help="Compliant ML with Dagster: governance policy, audit tools and the scoring service.",
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
receipts_app = typer.Typer(
    help="The scoring service's decision log: verify its hash chain (docs/serving.md).",
    no_args_is_help=True,
)
app.add_typer(receipts_app, name="receipts")
data_app = typer.Typer(
    help="Data versions on the team's object store: DVC push and pull ($MLCOMOPS_OBJECT_STORE_URL/dvc).",
    no_args_is_help=True,
)
app.add_typer(data_app, name="data")

_DECISION_LOG_HELP = (
    "SQLAlchemy URL of the decision log (default: $MLCOMOPS_DECISION_LOG_URL, else "
    "sqlite:///<home>/data/serving/decisions.db)."
)

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


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option("--host", help="Interface to bind: 127.0.0.1 only.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", min=1, max=65535, help="TCP port.")] = 8000,
    decision_log: Annotated[str | None, typer.Option("--decision-log", help=_DECISION_LOG_HELP)] = None,
    poll_seconds: Annotated[
        float | None,
        typer.Option(
            "--poll-seconds",
            help="How often to look for a newly promoted champion (default: the policy's serving.poll_seconds).",
        ),
    ] = None,
) -> None:
    """Serve the verified champion on 127.0.0.1: decisions with receipts and per-person reasons.

    Endpoints: POST /decisions, GET /decisions/{receipt_id}, POST /outcomes, /health, /ready, /metrics,
    /openapi.json. A newly promoted champion is verified and swapped in without downtime; a version that
    fails verification is never served.
    """
    from mlcomops_assets.policy import PolicyError
    from mlcomops_assets.serving.settings import ServingConfigError, ServingSettings, check_host

    try:
        check_host(host)
        settings = ServingSettings.from_home(decision_log=decision_log, poll_seconds=poll_seconds)
    except (PolicyError, ServingConfigError) as exc:
        raise _fail(str(exc)) from None
    from mlcomops_assets.serving.app import run

    try:
        run(settings, host, port)
    except ServingConfigError as exc:
        raise _fail(str(exc)) from None


@receipts_app.command("verify")
def receipts_verify(
    decision_log: Annotated[str | None, typer.Option("--decision-log", help=_DECISION_LOG_HELP)] = None,
) -> None:
    """Check the decision log's hash chains: one line per problem, then a verdict (exit 1 on problems).

    Every decision and outcome is re-hashed and both chains are followed: a changed, deleted or reordered
    record, and inputs that no longer match their keyed hash, are named by receipt id. Needs the pseudonym
    key the service used.
    """
    from mlcomops_assets.lib.decision_log import DecisionLog
    from mlcomops_assets.policy import PolicyError
    from mlcomops_assets.serving.settings import ServingConfigError, ServingSettings

    try:
        settings = ServingSettings.from_home(decision_log=decision_log)
    except (PolicyError, ServingConfigError) as exc:
        raise _fail(str(exc)) from None
    import sqlalchemy as sa

    url = sa.make_url(settings.decision_log_url)
    shown = url.render_as_string(hide_password=True)
    if url.get_backend_name() == "sqlite" and url.database and not Path(url.database).expanduser().is_file():
        raise _fail(f"no decision log at {shown}")
    try:
        log = DecisionLog(settings.decision_log_url, settings.input_key)
        result = log.verify()
    except sa.exc.SQLAlchemyError as exc:
        raise _fail(f"the decision log {shown} cannot be read: {exc}") from None
    typer.echo(f"decision log {shown}: {result.decisions} decision(s), {result.outcomes} outcome(s)")
    for problem in result.problems:
        typer.echo(f"PROBLEM {problem}")
    if result.problems:
        typer.echo(f"verdict: FAILED, {len(result.problems)} problem(s): the log was changed outside the service")
        raise typer.Exit(PROBLEMS_EXIT_CODE)
    head = f"; head hash {result.head_hash} (keep it elsewhere to detect a rewrite of the whole log)"
    typer.echo(
        "verdict: OK, every record matches its hash and both chains are unbroken" + (head if result.head_hash else "")
    )


_REPO_HELP = "The DVC repository (default: the project home, MLCOMOPS_HOME)."


def _data_remote(repo: Path | None, action: str) -> None:
    from mlcomops_assets import data_remote
    from mlcomops_assets.settings import default_home

    folder = (repo or default_home()).resolve()
    try:
        remote = data_remote.DvcRemote.from_env()
        output = getattr(data_remote, action)(folder, remote)
    except data_remote.DvcFailed as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(PROBLEMS_EXIT_CODE) from None
    except data_remote.DataRemoteError as exc:
        raise _fail(str(exc)) from None
    typer.echo(output or "Everything is up to date.")
    typer.echo(f"remote {data_remote.REMOTE_NAME}: {remote.url}")


@data_app.command("push")
def data_push(repo: Annotated[Path | None, typer.Option("--repo", help=_REPO_HELP)] = None) -> None:
    """Push the cached data versions (dvc.lock, .dvc files) to the team's object store.

    The remote's URL and endpoint go into .dvc/config.local (ignored by git); credentials are read
    from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) and never written.
    """
    _data_remote(repo, "push")


@data_app.command("pull")
def data_pull(repo: Annotated[Path | None, typer.Option("--repo", help=_REPO_HELP)] = None) -> None:
    """Pull the data versions the checkout names from the team's object store into the cache and workspace."""
    _data_remote(repo, "pull")


def main() -> None:
    """Console-script entry point (``mlcomops``) and ``python -m mlcomops_assets.cli``."""
    app(prog_name="mlcomops")


if __name__ == "__main__":
    main()
