"""A read-only HTTP server for the HTML evidence (Data Docs, drift reports, plots) linked from Dagster.

Browsers do not open ``file://`` links from an ``http://`` page, so ``make ui`` serves the report
folders on 127.0.0.1. Only ``data/reports/``, ``data/selection/``, ``data/batch_reports/`` and
``data/validation/`` are served: the data layers, which hold personal data, are never exposed.
"""

from __future__ import annotations

import argparse
import functools
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

from mlcomops_assets.settings import ProjectPaths, default_home

SERVED_FOLDERS = ("reports", "selection", "validation", "batch_reports")


class ReportHandler(SimpleHTTPRequestHandler):
    """Serves files below the allowed folders of ``data/``; anything else is 403."""

    def _allowed(self) -> bool:
        path = self.path.split("?", 1)[0].lstrip("/")
        return path.split("/", 1)[0] in SERVED_FOLDERS and ".." not in path.split("/")

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if not self._allowed():
            self.send_error(403, "only data/reports, data/selection, data/batch_reports and data/validation are served")
            return
        super().do_GET()

    def do_HEAD(self) -> None:  # noqa: N802
        if not self._allowed():
            self.send_error(403)
            return
        super().do_HEAD()


def serve(port: int, host: str = "127.0.0.1") -> None:
    paths = ProjectPaths(default_home())
    handler = functools.partial(ReportHandler, directory=str(paths.data_dir))
    with ThreadingHTTPServer((host, port), handler) as server:
        print(f"serving {', '.join(SERVED_FOLDERS)} of {paths.data_dir} on http://{host}:{port}")
        server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=3001)
    serve(parser.parse_args().port)


if __name__ == "__main__":
    main()
