"""One self-contained HTML file: every experiment found under a folder, with its figure
embedded, findings next to the paper's, tables, settings, data and caveats."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from defstab.io.atomic import strict_json, write_text
from defstab.io.tables import read_csv

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;font-size:.85em;margin:.6em 0;max-width:100%}
td,th{border:1px solid #ccc;padding:.25em .4em;text-align:left;overflow-wrap:anywhere}
th{font-size:.9em}
th{background:#f3f3f3}.num{text-align:right;font-variant-numeric:tabular-nums}
.yes{color:#17803d;font-weight:600}.no{color:#b42318;font-weight:600}.maybe{color:#8a6d00;font-weight:600}
.caveat{background:#fff7e0;border-left:4px solid #e0a800;padding:.4em .8em;margin:.4em 0}
img{max-width:100%;border:1px solid #eee}details{margin:.5em 0}code{background:#f5f5f5}
"""


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{data}">'


def columns_of(rows: list[dict]) -> list[str]:
    """Every column of ``rows``, in first-seen order (as :func:`defstab.io.tables.write_csv`
    writes them): a column that first appears in a later row is kept."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    return columns


def format_cell(value) -> str:
    """A table cell: numbers (also read back from a CSV) to 4 significant digits, a
    missing value as an empty cell."""
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return value
        if value.strip().lstrip("-").isdigit():
            return value.strip()  # an integer stays exact
        value = number
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _table(rows: list[dict], columns: list[str] | None = None) -> str:
    columns = columns or columns_of(rows)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = []
    for r in rows:
        cells = []
        for c in columns:
            text = format_cell(r.get(c))
            css = ' class="num"' if _is_number(text) else ""
            cells.append(f"<td{css}>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _pivot(summary: list[dict], metric: str) -> str:
    """Layers as rows, condition × phase as columns, cells 'mean ± 2 std'."""
    rows = [r for r in summary if r["metric"] == metric]
    if not rows:
        return ""
    cols = list(dict.fromkeys(f"{r['condition']} ({r['phase']})" for r in rows))
    layers = list(dict.fromkeys((int(r["layer_index"]), r["layer"]) for r in rows))
    cell = {
        (
            int(r["layer_index"]),
            f"{r['condition']} ({r['phase']})",
        ): f"{float(r['mean']):.3f} ± {2 * float(r['std']):.3f}"
        for r in rows
    }
    table = [
        {"layer": f"{i} {name}"} | {c: cell.get((i, c), "") for c in cols} for i, name in layers
    ]
    return (
        f"<details><summary>table: {html.escape(metric)} per layer "
        f"(mean ± 2 std over seeds)</summary>{_table(table, ['layer', *cols])}</details>"
    )


def _plan_line(meta: dict) -> str:
    """The seed plan, the seeds run and the multiplicity family, in one sentence."""
    plan = meta.get("seed_plan") or {}
    text = ""
    if plan:
        looks = ", ".join(str(n) for n in plan["looks"])
        text = (
            f"Seed plan ({plan.get('preset')}, stated before any run): looks at {looks} seeds, "
            f"{plan['correction']}; {len(meta.get('seeds', []))} seeds run."
        )
        if meta.get("beyond_plan"):
            text += " Seeds beyond the plan: their verdicts are exploratory, not the preset's."
    found = meta.get("findings") or []
    if found and "multiplicity" in found[0]:
        m = found[0]["multiplicity"]
        text += f" Holm over {m['holm_family_size']} finding(s) (family: {m['holm_family']})."
    return text.strip()


def _finding_row(f: dict) -> str:
    """One finding of the report's table: claim, numbers, δ, accuracy and verdict."""
    from defstab.experiments.verdicts import finding_notes

    verdict = f.get("verdict", "inconclusive")
    css = {"shows": "yes", "does not show": "no"}.get(verdict, "maybe")
    acc = " · ".join(
        f"{label} {f[key]:.3f}"
        for key, label in (("test_accuracy", "test acc."), ("train_accuracy", "train acc."))
        if f.get(key) is not None
    )
    delta = f.get("smallest_effect") or {}
    notes = finding_notes(f) if "verdict_words" in f else []
    extra = "".join(f"<br><small>{html.escape(n)}</small>" for n in notes)
    words = f.get("verdict_words", verdict)
    return (
        f"<tr><td>{html.escape(f['paper'])}</td><td>{html.escape(f['observed'])}"
        f"<br><small>effect: {html.escape(f.get('definition', ''))}</small>{extra}</td>"
        f"<td>{delta.get('value', '—')}<br><small>{html.escape(delta.get('reason', ''))}"
        f"</small></td><td>{html.escape(acc) or '—'}</td>"
        f'<td><span class="{css}">{html.escape(words)}</span></td></tr>'
    )


def _experiment_section(folder: Path, meta: dict) -> str:
    parts = [f"<h2>{html.escape(meta['title'])}</h2>"]
    parts += [f'<div class="caveat">{html.escape(c)}</div>' for c in meta.get("caveats", [])]
    fig = folder / meta.get("figure", "")
    if fig.is_file():
        parts.append(_img(fig))
        parts.append(
            "<p><small>Lines: mean over seeds; bands and error bars: ± 2 std over seeds, as "
            "Ruderman et al. 2018 draw them.</small></p>"
        )
    rows = [_finding_row(f) for f in meta.get("findings", [])]
    if meta.get("findings_retired"):
        parts.append(f"<p><b>No verdict.</b> {html.escape(meta['findings_retired'])}</p>")
    if rows:
        parts.append(f"<p>{html.escape(_plan_line(meta))}</p>")
        parts.append(
            "<h3>The paper's finding and this run</h3><table><tr><th>paper</th>"
            "<th>this run (effect, interval over seeds)</th><th>smallest effect of interest δ"
            f"</th><th>accuracy</th><th>verdict</th></tr>{''.join(rows)}</table>"
        )
        if meta.get("statistics"):
            parts.append(f"<p><small>{html.escape(meta['statistics'])}</small></p>")
    summary_path = folder / "summary.csv"
    if summary_path.is_file():
        summary = read_csv(summary_path)
        tables = meta.get("tables", ["sensitivity", "noise", "smoothness", "shifts"])
        for metric in ("sensitivity", "noise", "smoothness"):
            if metric in tables:
                parts.append(_pivot(summary, metric))
        shifts = [r for r in summary if ":" in r["metric"]] if "shifts" in tables else []
        if shifts:
            table = [
                {
                    "condition": r["condition"],
                    "measure": r["metric"],
                    "mean ± 2 std": f"{float(r['mean']):.4f} ± {2 * float(r['std']):.4f}",
                    "seeds": r["n_seeds"],
                }
                for r in shifts
            ]
            parts.append(
                "<h3>Translation measures (after training)</h3>"
                + _table(table, ["condition", "measure", "mean ± 2 std", "seeds"])
            )
    runs = meta.get("runs", [])
    if any("test_acc" in r for r in runs):
        parts.append(
            "<details><summary>runs and test accuracy</summary>"
            + _table(runs, ["key", "test_acc", "train_acc", "folder", "network"])
            + "</details>"
        )
    made_by = sorted(
        {
            json.dumps(r["provenance"], sort_keys=True, allow_nan=False)
            for r in runs
            if r.get("provenance")
        }
    )
    if made_by:
        parts.append(
            "<p>Runs computed by: "
            + "; ".join(
                html.escape(", ".join(f"{k} {v}" for k, v in json.loads(m).items()))
                for m in made_by
            )
            + "</p>"
        )
    settings = {
        "preset": meta.get("preset"),
        "data": meta.get("data"),
        "templates": meta.get("templates"),
        "seeds": meta.get("seeds"),
    } | meta.get("settings", {})
    parts.append(
        "<details><summary>settings</summary>"
        + _table(
            [
                {"setting": k, "value": json.dumps(strict_json(v), default=str, allow_nan=False)}
                for k, v in settings.items()
            ],
            ["setting", "value"],
        )
        + "</details>"
    )
    return "\n".join(parts)


def _extra_section(folder: Path, meta: dict) -> str:
    parts = [f"<h2>{html.escape(meta['title'])}</h2>"]
    parts += [f'<div class="caveat">{html.escape(c)}</div>' for c in meta.get("caveats", [])]
    parts += [f"<p>{html.escape(p)}</p>" for p in meta.get("text", [])]
    for name in meta.get("figures", []):
        if (folder / name).is_file():
            parts.append(_img(folder / name))
    table_file = folder / meta["table_file"] if meta.get("table_file") else None
    if table_file is not None and table_file.is_file():
        rows = read_csv(table_file)
        columns = [c for c in meta.get("table_columns", []) if rows and c in rows[0]]
        parts.append(f"<p><small>table: {html.escape(table_file.name)}</small></p>")
        parts.append(_table(rows, columns or None))
    elif meta.get("table"):
        parts.append(_table(meta["table"]))
    for table in meta.get("tables", []):  # bench: several tables, each with its title
        path = folder / table["file"]
        if path.is_file():
            rows = read_csv(path)
            columns = [c for c in table.get("columns", []) if rows and c in rows[0]]
            parts.append(f"<h3>{html.escape(table['title'])}</h3>")
            parts.append(_table(rows, columns or None))
    return "\n".join(parts)


def _versions(folder: Path, meta: dict) -> dict:
    """The library versions behind a section: an experiment records them in its
    experiment.json, a command in the config.json beside its section.json."""
    if meta.get("versions"):
        return meta["versions"]
    try:
        return json.loads((folder / "config.json").read_text()).get("versions") or {}
    except (OSError, ValueError):
        return {}


def find_sections(root: Path) -> list[tuple[Path, dict]]:
    found = []
    for name in ("section.json", "experiment.json"):
        for p in sorted(root.rglob(name)):
            parts = p.relative_to(root).parts
            if {"runs", "networks", "measurements"} & set(parts):
                continue
            if any(part.startswith(".") for part in parts[:-1]):
                continue  # a staging folder of a run in progress or killed: no result yet
            found.append((p.parent, json.loads(p.read_text())))
    from defstab.experiments.registry import list_experiments

    names = ["deformations", *list_experiments(), "bench", "train", "measure", "smoothness",
             "translate", "perturb", "spatial"]  # fmt: skip
    order = {name: i for i, name in enumerate(names)}
    return sorted(
        found,
        key=lambda x: (
            order.get(x[1].get("experiment", x[1].get("section")), len(order)),
            str(x[0]),
        ),
    )


def write_report(root: str | Path, path: str | Path, title: str = "defstab report") -> Path:
    """Collect every experiment under ``root`` into one self-contained HTML file."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"results folder not found: {root}")
    sections = find_sections(root)
    if not sections:
        raise ValueError(
            f"no defstab results found under {root} (no experiment.json or section.json from "
            "experiment, demo, bench, train, measure, smoothness, translate, perturb or "
            "spatial)."
        )
    versions = next((v for folder, m in sections if (v := _versions(folder, m))), {})
    body = [
        f"<h1>{html.escape(title)}</h1>",
        "<p>Sensitivity: the distance d(r(x), r(τx)) between a layer's representations of an "
        "image and of its deformation, divided by the median distance over pairs of "
        "undeformed images, per layer (layer 0 = input). Filter smoothness: normalized total "
        "variation (0 = spatially constant). Each section says what its figures draw (over "
        "seeds or over images) and which distance it used.</p>",
        "<p>Made by " + html.escape(", ".join(f"{k} {v}" for k, v in versions.items())) + "</p>",
    ]
    toc = []
    for folder, meta in sections:
        if "experiment" in meta:
            body.append(_experiment_section(folder, meta))
        else:
            body.append(_extra_section(folder, meta))
        toc.append(meta["title"])
    body.insert(1, "<ul>" + "".join(f"<li>{html.escape(t)}</li>" for t in toc) + "</ul>")
    doc = (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{CSS}</style></head><body>{''.join(body)}</body></html>"
    )
    return write_text(path, doc)
