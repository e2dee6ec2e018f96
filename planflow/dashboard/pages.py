"""The HTML of the pages: one shell (`assets/page.html`), one script, one stylesheet.

The shell names the page (`runs`, `run`, `compare`) and, for the static report, carries the
run's view as JSON; `assets/dashboard.js` fetches the rest from the API, or reads the
embedded JSON when there is no server. plotly.js comes from the plotly Python package (never a
CDN): served at `/static/plotly.min.js`, or inlined in the report. Nothing is fetched from the
internet, and no value reaches the page unescaped (JSON in a `<script type="application/json">`
block has `<`, `>`, `&` and the line separators escaped; titles are HTML-escaped).
"""

from __future__ import annotations

import functools
import html
import json
import re
from importlib import resources
from typing import Any

from planner.errors import UsageError

ASSETS = ("dashboard.js", "dashboard.css")
"""Files served under /static/ besides plotly.min.js."""

DASHBOARD_EXTRA = "planflow[dashboard]"
"""What to install for the dashboard and the report."""

_SLOT = re.compile(r"@@(TITLE|HEAD|CONFIG|DATA)@@")
"""Slots of page.html."""


@functools.cache
def asset(name: str) -> str:
    """The text of one of the package's assets."""
    return resources.files("planflow.dashboard").joinpath("assets", name).read_text("utf-8")


@functools.cache
def plotly_js() -> str:
    """plotly.js as the plotly package ships it."""
    try:
        from plotly.offline import get_plotlyjs
    except ImportError as err:
        raise UsageError(f"the dashboard needs plotly: pip install '{DASHBOARD_EXTRA}'"
                         ) from err
    return str(get_plotlyjs())


def script_json(value: Any) -> str:
    """JSON safe inside a `<script type="application/json">` element."""
    text = json.dumps(value, separators=(",", ":"), allow_nan=False, default=str)
    return (text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def page(kind: str, title: str, *, run_id: str = "", embedded: Any = None,
         inline: bool = False, namespace: str = "") -> str:
    """One page. `inline=True` (the static report) puts plotly.js, the script and the
    stylesheet inside the file; otherwise they load from /static/."""
    if inline:
        head = (f"<style>{asset('dashboard.css')}</style>\n"
                f"<script>{_script_text(plotly_js())}</script>\n"
                f"<script>{_script_text(asset('dashboard.js'))}</script>")
    else:
        head = ('<link rel="stylesheet" href="/static/dashboard.css">\n'
                '<script src="/static/plotly.min.js"></script>\n'
                '<script src="/static/dashboard.js"></script>')
    config = {"page": kind, "run_id": run_id, "static": inline, "namespace": namespace}
    values = {"TITLE": html.escape(title), "HEAD": head, "CONFIG": script_json(config),
              "DATA": script_json(embedded)}
    return _SLOT.sub(lambda m: values[m.group(1)], asset("page.html"))  # one pass


def _script_text(code: str) -> str:
    """Code safe inside a <script> element (a literal `</script` would end it early)."""
    return code.replace("</script", "<\\/script")
