import os
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from mlcomops_assets_tests.conftest import materialize, write_home
from mlcomops_assets_tests.data_factory import PSEUDONYM_KEY, credit_applications, credit_policy


@pytest.fixture(autouse=True)
def pseudonym_key(monkeypatch):
    """The test datasets pseudonymize their application ids; real keys come from a secret store."""
    monkeypatch.setenv("MLCOMOPS_PSEUDONYM_KEY", PSEUDONYM_KEY)


@contextmanager
def captured_output(target: Path) -> Iterator[None]:
    """Everything written to stdout and stderr (logs included), at file-descriptor and Python level."""
    saved = [os.dup(1), os.dup(2)]
    with open(target, "w", encoding="utf-8") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            with redirect_stdout(sink), redirect_stderr(sink):
                yield
        finally:
            sink.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)


@pytest.fixture(scope="session")
def credit_run(tmp_path_factory):
    """The whole graph on credit applications with direct identifiers, its console output captured."""
    frame = credit_applications()
    home = write_home(tmp_path_factory.mktemp("credit"), credit_policy("inbox/applications.csv"))
    (home / "inbox").mkdir()
    frame.to_csv(home / "inbox/applications.csv", index=False)
    log_file = Path(tempfile.mkdtemp()) / "console.log"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLCOMOPS_PSEUDONYM_KEY", PSEUDONYM_KEY)
        with ExitStack() as stack:
            with captured_output(log_file):
                # The run completes inside the capture; the instance stays open for the tests.
                result, instance = stack.enter_context(materialize(home))
            yield home, frame, result, instance, log_file
