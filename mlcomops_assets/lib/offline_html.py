"""Published HTML that works offline: no script, no external resource, readable as it is.

Great Expectations' Data Docs load Bootstrap, jQuery, bootstrap-table, Vega, Font Awesome and a logo from
CDNs and S3; offline they render unstyled, the index (filled in by JavaScript) is empty, and an auditor's
browser contacts third parties. After GX has written its pages, :func:`make_data_docs_offline` rewrites
them in place:

- every ``<script>`` goes (GX's scripts only drive the CDN libraries), and so do event-handler
  attributes; stylesheets and images from elsewhere go, external ``url()``/``@import`` in CSS too;
  outbound hyperlinks keep their text but lose their target; GX's marketing footers go;
- a small stylesheet of our own (the few Bootstrap classes GX's markup uses, written here, not copied)
  replaces Bootstrap, shows collapsed sections ("Show more info...") open, draws Font Awesome's status
  icons as text, and keeps GX's "Failed Only" filter working with CSS alone;
- a Content-Security-Policy ``<meta>`` (:data:`CSP`) makes the browser refuse any load from elsewhere,
  should anything be missed; a page needs nothing but itself and local images;
- ``index.html`` is rendered here as static tables of the validation pages and expectation suites that
  are on disk (GX's own index is an empty table until bootstrap-table arrives from a CDN).

The rewrite is idempotent: our stylesheet and CSP are recognised and replaced, not added twice. It only
removes and restyles markup, and the index shows names, run times and counts read from the pages, so the
scrubbing of ``gx_scrub`` (counts, never cell values) holds unchanged.
The module is pure (standard library only) so other publishers can use :func:`make_offline` too.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote, urlsplit

from mlcomops_assets.lib.files import write_atomic

# Nothing from elsewhere and no script: styles, images and fonts inline or from the same origin only.
CSP = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
    "base-uri 'none'; form-action 'none'"
)
_STYLE_ID = "mlcomops-offline-style"
_CSP_TAG = f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
# An icon that needs no request: otherwise a browser asks the server for /favicon.ico (a 404 there).
_ICON_TAG = '<link rel="icon" href="data:,">'

# Attributes through which a page loads something (or, for <a>/<area>, links to it).
_RESOURCE_ATTRS = {"src", "href", "srcset", "data", "poster", "background", "action", "formaction", "ping", "manifest"}
_RESOURCE_ATTRS |= {"xlink:href"}  # SVG
_LINK_TAGS = {"a", "area"}  # href is a hyperlink, not a load
_DROPPED_ELEMENTS = {"script", "iframe", "object", "embed", "noscript", "template"}
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "param", "source", "track", "wbr"}
_CSS_URL = re.compile(r"""url\(\s*(?P<q>['"]?)(?P<url>.*?)(?P=q)\s*\)""", re.IGNORECASE | re.DOTALL)
_CSS_IMPORT = re.compile(r"@import\s+[^;]*;?", re.IGNORECASE)


def is_external(url: str | None) -> bool:
    """Whether ``url`` leaves the page's own site: any scheme but ``data:``, or a ``//host`` reference.
    Relative paths and ``#fragments`` are local."""
    if not url:
        return False
    url = url.strip()
    if url.startswith(("//", "\\\\")):
        return True
    scheme = urlsplit(url).scheme.lower()
    return scheme not in ("", "data")


def clean_css(css: str) -> str:
    """``css`` without ``@import`` and with every external ``url(...)`` replaced by ``none``."""
    css = _CSS_IMPORT.sub("", css)
    return _CSS_URL.sub(lambda m: "none" if is_external(m.group("url")) else m.group(0), css)


def _srcset_external(value: str) -> bool:
    return any(is_external(part.strip().split(" ")[0]) for part in value.split(",") if part.strip())


def _attr_external(name: str, value: str | None) -> bool:
    if value is None:
        return False
    return _srcset_external(value) if name == "srcset" else is_external(value)


def external_references(page: str) -> list[str]:
    """Every reference of ``page`` to something outside its site, as ``tag[attr]=url``: loads (scripts,
    stylesheets, images, frames, CSS ``url()``/``@import``) and outbound hyperlinks alike. Script bodies
    are not searched: they are code, not markup (a page that keeps scripts needs a browser to check it)."""
    finder = _ReferenceFinder()
    finder.feed(page)
    finder.close()
    return finder.found


class _ReferenceFinder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_style = tag == "style"
        for name, value in attrs:
            if name in _RESOURCE_ATTRS and _attr_external(name, value):
                self.found.append(f"{tag}[{name}]={value}")
            elif name == "style" and value and clean_css(value) != value:
                self.found.append(f"{tag}[style]={value}")

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style and clean_css(data) != data:
            self.found.extend(f"style:{m.group(0)}" for m in _CSS_IMPORT.finditer(data))
            self.found.extend(f"style:{m.group(0)}" for m in _CSS_URL.finditer(data) if is_external(m.group("url")))


def _start_tag(tag: str, attrs: list[tuple[str, str | None]], closed: bool = False) -> str:
    parts = [tag]
    for name, value in attrs:
        parts.append(name if value is None else f'{name}="{html.escape(value, quote=True)}"')
    return "<" + " ".join(parts) + (" />" if closed else ">")


class _Offline(HTMLParser):
    """Re-emits a page token by token, leaving out or rewriting whatever would load from elsewhere."""

    def __init__(self, stylesheet: str, drop: frozenset[str]) -> None:
        super().__init__(convert_charrefs=False)
        self.out: list[str] = []
        self._stylesheet = stylesheet
        self._drop = _DROPPED_ELEMENTS | drop
        self._skip: list[str] = []  # open elements being left out (nested ones of the same name count)
        self._in_head = False
        self._in_style = False
        self._ours = False  # inside our own stylesheet from an earlier pass: replaced
        self._csp_done = False
        self._style_done = False

    # -- helpers
    def _inject_style(self) -> None:
        if not self._style_done:
            self.out.append(f'<style id="{_STYLE_ID}">{self._stylesheet}</style>')
            self._style_done = True

    def _emit_start(self, tag: str, attrs: list[tuple[str, str | None]], closed: bool) -> None:
        if self._skip:
            if tag == self._skip[-1] and not closed:
                self._skip.append(tag)
            return
        if tag in self._drop:
            if not closed and tag not in _VOID:
                self._skip.append(tag)
            return
        if tag == "meta" and any(
            n == "http-equiv" and (v or "").lower() in ("content-security-policy", "refresh") for n, v in attrs
        ):
            return  # ours is added after <head>; a refresh could navigate anywhere
        if tag == "base":
            return
        if tag == "link":
            if any(_attr_external(n, v) for n, v in attrs if n in ("href", "imagesrcset")):
                return
            if any(n == "rel" and "icon" in (v or "").lower().split() for n, v in attrs):
                return  # ours comes with the CSP (GX's points to a path that does not exist from subpages)
            if self._in_head and any(n == "rel" and "stylesheet" in (v or "").lower() for n, v in attrs):
                self._inject_style()
        if tag == "style":
            if dict(attrs).get("id") == _STYLE_ID:
                self._ours = True
                return
            if self._in_head:
                self._inject_style()
            self._in_style = True
        if tag == "img" and any(_attr_external(n, v) for n, v in attrs if n in ("src", "srcset")):
            alt = dict(attrs).get("alt") or ""
            self.out.append(f'<span class="offline-image">{html.escape(alt)}</span>' if alt else "")
            return
        if tag == "head":
            self._in_head = True
        elif tag == "body" and not self._csp_done:  # a page without <head>: one is added
            self.out.append(f"<head>{_CSP_TAG}{_ICON_TAG}")
            self._inject_style()
            self.out.append("</head>")
            self._csp_done = True
        rewritten = self._rewrite(tag, attrs)
        if rewritten == attrs:
            self.out.append(self.get_starttag_text() or _start_tag(tag, attrs, closed))
        else:
            self.out.append(_start_tag(tag, rewritten, closed))
        if tag == "head" and not self._csp_done:
            self.out.append(_CSP_TAG + _ICON_TAG)
            self._csp_done = True

    @staticmethod
    def _rewrite(tag: str, attrs: list[tuple[str, str | None]]) -> list[tuple[str, str | None]]:
        kept: list[tuple[str, str | None]] = []
        for name, value in attrs:
            if name.startswith("on"):
                continue  # event handlers are scripts
            if name == "style" and value:
                value = clean_css(value)
            elif name in _RESOURCE_ATTRS and _attr_external(name, value):
                continue  # javascript: and mailto: included; for <a>: the text stays, the link goes
            elif (
                tag in _LINK_TAGS
                and name in ("target", "rel")
                and any(n == "href" and _attr_external(n, v) for n, v in attrs)
            ):
                continue
            kept.append((name, value))
        return kept

    # -- HTMLParser callbacks
    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._emit_start(tag, attrs, closed=False)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._emit_start(tag, attrs, closed=True)

    def handle_endtag(self, tag: str) -> None:
        if self._skip:
            if tag == self._skip[-1]:
                self._skip.pop()
            return
        if tag in self._drop:
            return
        if tag == "style":
            self._in_style = False
            if self._ours:
                self._ours = False
                return
        if tag == "head":
            self._inject_style()
            self._in_head = False
        self.out.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        if self._skip or self._ours:
            return
        self.out.append(clean_css(data) if self._in_style else data)

    def handle_entityref(self, name: str) -> None:
        if not (self._skip or self._ours):
            self.out.append(f"&{name};")

    def handle_charref(self, name: str) -> None:
        if not (self._skip or self._ours):
            self.out.append(f"&#{name};")

    def handle_comment(self, data: str) -> None:
        pass  # comments carry nothing for a reader (and conditional comments can load things)

    def handle_decl(self, decl: str) -> None:
        self.out.append(f"<!{decl}>")

    def handle_pi(self, data: str) -> None:
        self.out.append(f"<?{data}>")

    def unknown_decl(self, data: str) -> None:
        pass


def make_offline(page: str, stylesheet: str = "", drop: Iterable[str] = ()) -> str:
    """``page`` with no script and no external resource, our ``stylesheet`` in its head and :data:`CSP`
    as its first child; elements named in ``drop`` are left out with their content."""
    parser = _Offline(stylesheet, frozenset(drop))
    parser.feed(page)
    parser.close()
    return "".join(parser.out)


# --- Data Docs ---------------------------------------------------------------------------------------


def _spacing() -> str:
    sizes = {"0": "0", "1": ".25rem", "2": ".5rem", "3": "1rem", "4": "1.5rem", "5": "3rem"}
    sides = {"": ("",), "t": ("-top",), "b": ("-bottom",), "l": ("-left",), "r": ("-right",)}
    sides |= {"x": ("-left", "-right"), "y": ("-top", "-bottom")}
    rules = []
    for prop, name in (("m", "margin"), ("p", "padding")):
        for side, suffixes in sides.items():
            for size, value in sizes.items():
                body = ";".join(f"{name}{s}:{value}" for s in suffixes)
                rules.append(f".{prop}{side}-{size}{{{body}}}")
    return "\n".join(rules)


# The Bootstrap 4 classes GX's markup uses, as far as reading needs them; written for this project.
DATA_DOCS_CSS = (
    """
*,*::before,*::after{box-sizing:border-box}
html{color-scheme:light dark}
body{margin:0;font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;
 font-size:15px;line-height:1.5;color:#212529;background:#fff}
a{color:#0b5cad;text-decoration:none} a[href]:hover{text-decoration:underline} a:not([href]){color:inherit}
h1,h2,h3,h4,h5,h6,.h6{margin:0 0 .5rem;font-weight:600;line-height:1.25} .h6{font-size:1rem}
h4{font-size:1.35rem} h5{font-size:1.15rem} h6{font-size:1rem} .lead{font-size:1.1rem;font-weight:300}
p{margin:0 0 1rem} ul,ol{margin:0 0 1rem} strong{font-weight:600}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.875em}
.container-fluid{width:100%;padding-left:15px;padding-right:15px}
.row{display:flex;flex-wrap:wrap}
.row>*{position:relative;width:100%;max-width:100%}
.col-12{flex:0 0 100%;max-width:100%} .col-6{flex:0 0 50%;max-width:50%}
@media (min-width:768px){.col-md-2{flex:0 0 16.667%;max-width:16.667%}.col-md-10{flex:0 0 83.333%;max-width:83.333%}}
@media (min-width:992px){.col-lg-2{flex:0 0 16.667%;max-width:16.667%}.col-lg-10{flex:0 0 83.333%;max-width:83.333%}}
.flex-column{flex-direction:column} .align-items-center{align-items:center}
.justify-content-center{justify-content:center} @media (min-width:576px){.flex-sm-row{flex-direction:row}}
.float-left{float:left} .mr-auto{margin-right:auto} .h-100{height:100%} .text-center{text-align:center}
.invisible{visibility:hidden} .rounded{border-radius:.25rem} .border-bottom{border-bottom:1px solid #dee2e6}
.sticky-top{position:sticky;top:0;z-index:1020}
.navbar{display:flex;align-items:center;padding:.5rem 1rem;background:#fff}
.navbar-brand{display:inline-block;font-size:1.25rem;white-space:nowrap}
.offline-image{display:inline-block;font-weight:600;font-size:1.1rem;color:#ff6310;padding:.6rem 0}
.breadcrumb{display:flex;flex-wrap:wrap;list-style:none;margin:0;padding:.5rem 1rem;border-radius:.25rem}
.breadcrumb-item+.breadcrumb-item::before{content:"/";padding:0 .5rem;color:#6c757d}
.breadcrumb-item.active{color:#6c757d}
.bg-light{background:#f8f9fa}
.nav{display:flex;flex-wrap:wrap;list-style:none;margin:0;padding:0}
.nav-link{display:block;padding:.3rem .6rem} .nav-pills .nav-link{border-radius:.25rem}
.card{position:relative;display:flex;flex-direction:column;border:1px solid rgba(0,0,0,.125);
 border-radius:.25rem;background:#fff}
.card-header{padding:.5rem .75rem;background:rgba(0,0,0,.03);border-bottom:1px solid rgba(0,0,0,.125)}
.card-body{flex:1 1 auto;padding:.75rem}
.alert{position:relative;padding:.6rem 1rem;margin-bottom:1rem;border:1px solid transparent;border-radius:.25rem}
.alert-secondary{color:#383d41;background:#e2e3e5;border-color:#d6d8db}
.alert-info{color:#0c5460;background:#d1ecf1;border-color:#bee5eb}
.alert-danger{color:#721c24;background:#f8d7da;border-color:#f5c6cb}
.badge{display:inline-block;padding:.2em .45em;font-size:80%;font-weight:600;line-height:1;white-space:nowrap;
 vertical-align:baseline;border-radius:.25rem}
.badge-secondary{color:#fff;background:#6c757d}
.table{width:100%;margin-bottom:1rem;border-collapse:collapse;color:#212529}
.table th,.table td{padding:.6rem;vertical-align:top;border-top:1px solid #dee2e6;text-align:left}
.table thead th{vertical-align:bottom;border-bottom:2px solid #dee2e6}
.table-sm th,.table-sm td{padding:.3rem}
.table-responsive{display:block;width:100%;overflow-x:auto}
.text-success{color:#1e7e34} .text-danger{color:#bd2130} .text-warning{color:#b27b00} .text-muted{color:#6c757d}
.btn{display:inline-block;font-weight:400;text-align:center;vertical-align:middle;cursor:pointer;
 border:1px solid transparent;padding:.3rem .7rem;border-radius:.25rem;user-select:none}
.btn-primary{color:#0b5cad;background:#fff;border-color:#0b5cad}
.btn-group{display:inline-flex} .btn-group>.btn+.btn{margin-left:-1px}
.btn-group-toggle input{position:absolute;clip:rect(0,0,0,0);pointer-events:none}
.btn-group-toggle .btn:has(input:checked){color:#fff;background:#0b5cad}
/* Collapsed blocks stay open: without Bootstrap's script they could not be opened. */
.collapse{display:block} a[data-toggle="collapse"]{pointer-events:none;color:inherit;font-weight:600}
/* Font Awesome's status icons, as text. */
.fas,.far,.fa{font-style:normal;font-weight:700}
.fa-check-circle::before{content:"\\2714"} .fa-times::before{content:"\\2716"}
.fa-exclamation-triangle::before{content:"\\26A0"} .fa-question-circle::before{content:"?"}
.fa-comment::before{content:"\\2026"}
/* GX's "Failed Only" filter, without its script: the radio button decides what is shown. */
body:has(#option2:checked) :has(> .hide-succeeded-validation-target-child),
body:has(#option2:checked) .hide-succeeded-validation-target,
body:has(#option2:checked) .ge-section:has(> .row > .hide-succeeded-validations-column-section-target-child)
 {display:none}
.status-passed{color:#1e7e34;font-weight:600} .status-failed{color:#bd2130;font-weight:600}
.offline-note{color:#6c757d;font-size:.9rem}
/* Display utilities last and decisive, as in Bootstrap. */
.d-none{display:none!important} .d-flex{display:flex!important}
@media (min-width:576px){.d-sm-block{display:block!important}}
@media (min-width:768px){.d-md-block{display:block!important}.d-md-inline-flex{display:inline-flex!important}}
@media (prefers-color-scheme:dark){
 body,.navbar,.card{background:#1d1f21;color:#e6e6e6} .table{color:#e6e6e6}
 .bg-light{background:#2a2d30} .alert-secondary{background:#34383c;color:#e6e6e6;border-color:#45494e}
 .card-header{background:#26292c} a{color:#6fb1f5} .btn-primary{background:#1d1f21;color:#6fb1f5;border-color:#6fb1f5}
 .btn-group-toggle .btn:has(input:checked){color:#1d1f21;background:#6fb1f5}
 .status-passed,.text-success{color:#5cc27a} .status-failed,.text-danger{color:#f07178}
}
"""
    + _spacing()
    + "\n"
)

# GX pages end with a newsletter footer and a "how to" call to action: nothing of the evidence.
_GX_DROP = ("footer",)
_STAT_LABELS = ("Evaluated Expectations", "Successful Expectations", "Unsuccessful Expectations")


@dataclass(frozen=True)
class ValidationPage:
    """One validation result page of a Data Docs site, as found on disk."""

    path: str  # relative to the site, with forward slashes
    suite: str
    run_name: str
    run_time: str
    batch: str
    evaluated: int | None
    successful: int | None

    @property
    def status(self) -> str:
        if self.evaluated is None or self.successful is None:
            return "unknown"
        return "passed" if self.successful == self.evaluated else "failed"


class _Cells(HTMLParser):
    """The text of every table cell, in document order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.cells: list[str] = []
        self._depth = 0
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag in ("td", "th"):
            self._depth += 1
            self._text = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._depth:
            self._depth -= 1
            self.cells.append(" ".join("".join(self._text).split()))

    def handle_data(self, data: str) -> None:
        if self._depth:
            self._text.append(data)


def _statistics(page: str) -> dict[str, int]:
    """GX's overview statistics of a validation page ("Evaluated Expectations" -> 41, ...)."""
    parser = _Cells()
    parser.feed(page)
    parser.close()
    found = {}
    for label, value in zip(parser.cells, parser.cells[1:], strict=False):
        if label in _STAT_LABELS and value.isdigit():
            found.setdefault(label, int(value))
    return found


def _run_time(text: str) -> str:
    for layout in ("%Y%m%dT%H%M%S.%fZ", "%Y%m%dT%H%M%SZ"):
        try:
            return datetime.strptime(text, layout).replace(tzinfo=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        except ValueError:
            continue
    return text


def validation_pages(site: Path) -> list[ValidationPage]:
    """Every validation page under ``site/validations/`` (GX's layout: ``<suite, split at dots>/<run
    name>/<run time>/<batch>.html``), newest first."""
    root = site / "validations"
    pages = []
    for file in root.rglob("*.html") if root.is_dir() else ():
        parts = file.relative_to(root).parts
        if len(parts) < 4:
            continue
        *suite, run_name, run_time, name = parts
        stats = _statistics(file.read_text(encoding="utf-8", errors="replace"))
        pages.append(
            ValidationPage(
                path=file.relative_to(site).as_posix(),
                suite=".".join(suite),
                run_name=run_name,
                run_time=run_time,
                batch=name.removesuffix(".html"),
                evaluated=stats.get("Evaluated Expectations"),
                successful=stats.get("Successful Expectations"),
            )
        )
    return sorted(pages, key=lambda p: (p.run_time, p.path), reverse=True)


def suite_pages(site: Path) -> list[tuple[str, str]]:
    """(suite name, page path relative to the site) for every page under ``site/expectations/``."""
    root = site / "expectations"
    found = []
    for file in root.rglob("*.html") if root.is_dir() else ():
        relative = file.relative_to(root).with_suffix("")
        found.append((".".join(relative.parts), file.relative_to(site).as_posix()))
    return sorted(found)


def page(title: str, body: str, stylesheet: str = DATA_DOCS_CSS) -> str:
    """A complete offline page: CSP first, inline stylesheet, no script, an icon that needs no request."""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n'
        f'<meta charset="utf-8">\n{_CSP_TAG}\n<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f'<meta name="referrer" content="no-referrer">\n{_ICON_TAG}\n'
        f'<title>{html.escape(title)}</title>\n<style id="{_STYLE_ID}">{stylesheet}</style>\n</head>\n'
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def render_docs_index(site: Path, site_name: str = "Data Docs") -> str:
    """The Data Docs index as static HTML: a table of the validation pages on disk (status, run time,
    suite, run name, batch, expectations passed) and one of the expectation suites, each row a link."""
    esc = html.escape
    rows = []
    for v in validation_pages(site):
        counts = f"{v.successful} of {v.evaluated}" if v.status != "unknown" else "?"
        rows.append(
            f'<tr class="validation-row"><td class="status-{v.status}">{v.status}</td>'
            f'<td><a href="{esc(quote(v.path))}">{esc(_run_time(v.run_time))}</a></td>'
            f"<td>{esc(v.suite)}</td><td>{esc(v.run_name)}</td><td>{esc(v.batch)}</td><td>{counts}</td></tr>"
        )
    validations = (
        '<table class="table table-sm" id="validation-results"><thead><tr><th>Status</th><th>Run time</th>'
        "<th>Expectation suite</th><th>Run name</th><th>Batch</th><th>Expectations passed</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>"
        if rows
        else '<p id="validation-results">No validation result has been published yet.</p>'
    )
    suites = "".join(f'<li><a href="{esc(quote(path))}">{esc(name)}</a></li>' for name, path in suite_pages(site))
    body = (
        '<nav class="navbar border-bottom"><span class="offline-image">Data Docs</span></nav>\n'
        '<div class="container-fluid pt-4 pb-4 pl-5 pr-5">\n'
        f'<div class="alert alert-secondary"><strong>Data Docs</strong> | {esc(site_name)}</div>\n'
        f"<h4>Validation results</h4>\n{validations}\n"
        f'<h4>Expectation suites</h4>\n<ul id="expectation-suites">{suites}</ul>\n'
        '<p class="offline-note">Rendered by Great Expectations for offline reading: no script and nothing '
        "loaded from elsewhere. Result pages carry counts and the rules' parameters, never a cell value.</p>\n"
        "</div>"
    )
    return page(f"{site_name} (Great Expectations)", body)


def _write_if_changed(target: Path, text: str) -> bool:
    if target.exists() and target.read_text(encoding="utf-8", errors="replace") == text:
        return False
    write_atomic(target, lambda p: p.write_text(text, encoding="utf-8"))
    return True


def make_data_docs_offline(site: Path, site_name: str = "Data Docs") -> list[Path]:
    """Rewrite the Data Docs site ``site`` for offline reading (see the module's docstring): every page
    and stylesheet cleaned, ``index.html`` rendered statically. Returns the files that changed."""
    changed = []
    index = site / "index.html"
    for file in sorted(site.rglob("*.html")):
        if file == index or file.name.startswith("."):
            continue
        text = file.read_text(encoding="utf-8", errors="replace")
        if _write_if_changed(file, make_offline(text, DATA_DOCS_CSS, _GX_DROP)):
            changed.append(file)
    for file in sorted(site.rglob("*.css")):
        if not file.name.startswith(".") and _write_if_changed(file, clean_css(file.read_text(encoding="utf-8"))):
            changed.append(file)
    if _write_if_changed(index, render_docs_index(site, site_name)):
        changed.append(index)
    return changed
