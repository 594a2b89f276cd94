"""The report server shows reports and Data Docs, and refuses the data layers with personal data."""

import functools
import threading
import urllib.error
import urllib.request
from http.server import ThreadingHTTPServer

import pytest

from mlcomops_assets.report_server import ReportHandler


@pytest.fixture
def server(tmp_path):
    (tmp_path / "reports/drift").mkdir(parents=True)
    (tmp_path / "reports/drift/batch-2001.html").write_text("<html>drift</html>")
    (tmp_path / "raw").mkdir()
    (tmp_path / "raw/source.csv").write_text("name\nAlice Example\n")
    handler = functools.partial(ReportHandler, directory=str(tmp_path))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_reports_are_served_and_data_layers_are_not(server):
    with urllib.request.urlopen(f"{server}/reports/drift/batch-2001.html", timeout=10) as response:
        assert response.read() == b"<html>drift</html>"
    for forbidden in ("/raw/source.csv", "/reports/../raw/source.csv", "/"):
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(f"{server}{forbidden}", timeout=10)
        assert info.value.code in (403, 404)
