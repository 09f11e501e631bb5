"""`explore --html`: one self-contained page for a counterexample (inline CSS and SVG, no scripts, no links).

It shows the title (variant, property, verdict), the minimal configuration, the replay's outcome, the buffer
picture of `xenpin.report.explore` with its legend and the failing page marked, and the timeline of the boot
steps that touched the failing page, with Xen's lines.
"""

from __future__ import annotations

from html import escape

from xenpin.report import explore as pictures
from xenpin.report.boot import size_text
from xenpin.symbolic.prove import Verdict

STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #000; background: #fff; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 1.5em; }
table { border-collapse: collapse; } td, th { border: 1px solid #888; padding: 0.2em 0.6em; text-align: left;
  vertical-align: top; }
code, pre, td.mono { font-family: monospace; } pre { margin: 0.2em 0; white-space: pre-wrap; }
tr.failure td { border: 3px solid #000; font-weight: bold; }
.verdict { font-weight: bold; } figure { margin: 0.5em 0; }
"""

PARAM_NAMES = {
    "nr": "memory",
    "kernel": "kernel image",
    "ramdisk": "ramdisk",
    "slack": "slack",
    "low_end": "end of low RAM",
    "high_end": "end of high RAM",
    "gbpages": "1 GiB pages",
}


def _bytes(n: int) -> str:
    text = size_text(n)
    return text if text.startswith("0x") else f"{text} ({n:#x} bytes)"


def render_html(v: Verdict) -> str:
    """The page for one replayed counterexample (`v.witness` and `v.replay` set)."""
    w, r = v.witness, v.replay
    assert w is not None and r is not None
    title = f"{v.variant.name} · {v.prop} · {v.verdict}"
    config = [
        ("machine", w.describe()),
        ("role", r.config.role),
        *(
            (
                PARAM_NAMES.get(name, name),
                ("yes" if value else "no") if name == "gbpages" else _bytes(value << 12),
            )
            for name, value in w.machine
        ),
        ("init_memory_mapping call", str(w.call)),
        ("failing page", f"pfn {w.pfn:#x} (physical {w.pfn << 12:#x})"),
    ]
    if w.alloc:  # 0: the failing page is no allocation of the buffer (a start-of-day table, say)
        config.append(("allocation", f"#{w.alloc}"))
    config.append(("minimal", "yes" if w.minimal else "no (another configuration)"))
    f = r.failure
    outcome = (
        f"{f.outcome} in {f.phase or 'the boot'} at boot step {f.step}, pfn {f.pfn:#x}"
        if f
        else (f"boot {r.outcome}, {v.prop} = {r.properties[v.prop]}")
    )
    rows = []
    for t in pictures.timeline(r, w.call, w.pfn, v.prop):
        cls = ' class="failure"' if t.lines else ""
        lines = "".join(f"<pre>{escape(line)}</pre>" for line in t.lines)
        rows.append(
            f'<tr{cls}><td class="mono">{t.step}</td><td>{t.call}</td><td class="mono">{escape(t.action)}</td>'
            f"<td>{escape(t.text)}{lines}</td></tr>"
        )
    svg = pictures.render_svg(r, w.call, w.pfn, v.prop)
    release = f" (release {escape(str(v.variant.release))})" if v.variant.release else ""
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title><style>{STYLE}</style></head>
<body>
<h1>{escape(title)}</h1>
<p class="verdict">{escape(v.variant.name)}{release}: {escape(v.prop)} is a
{escape(v.verdict)} (expected: {escape(v.expected)}).</p>
<p>Replay: {escape(outcome)}.</p>
<h2>Minimal configuration</h2>
<table>{"".join(f"<tr><th>{escape(k)}</th><td>{escape(val)}</td></tr>" for k, val in config)}</table>
<h2>The buffer</h2>
<p>State shown: {escape(pictures.moment(r, w.call, v.prop).what)}.</p>
<figure>{svg}</figure>
<h2>Timeline of the failing page {w.pfn:#x}</h2>
<table><tr><th>step</th><th>call</th><th>action</th><th>what happened</th></tr>{"".join(rows)}</table>
</body></html>
"""
