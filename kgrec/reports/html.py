"""``kgrec report RUN_DIR``: one self-contained HTML page from a run directory.

Reads what the run wrote (see :mod:`kgrec.reports.run_details` for the layout): ``results.json`` (demo) or
``metrics.json`` (train) and, when present, ``report.json``. Writes ``report.html`` with inline
CSS and the plots embedded as base64 PNG: no script, stylesheet, font or image is fetched from
anywhere, so the file can be mailed or archived as it is. No model or data is reloaded.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path
from typing import Any

from kgrec.errors import KgrecError
from kgrec.reports.run_details import REPORT_DATA
from kgrec.reports.tables import atomic_write_text

__all__ = ["load_run", "render_report", "write_report", "SECTIONS"]

#: Section ids of the page, in order (a section without data says so instead of disappearing).
SECTIONS = ("metrics", "metrics-vs-k", "training", "popularity", "users")
_COLORS = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C", "#CCB974",
           "#64B5CD"]
_CSS = """
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:0;background:#f4f5f7;color:#222}
main{max-width:1180px;margin:0 auto;padding:20px 28px 60px}
h1{font-size:26px;margin:8px 0 4px}h2{font-size:20px;margin:0 0 10px;border-bottom:2px solid #e2e4e8;padding-bottom:6px}
h3{font-size:16px;margin:14px 0 6px}.sub{color:#666;font-size:13px;margin-bottom:16px}
section{background:#fff;border-radius:8px;padding:16px 20px;margin:16px 0;box-shadow:0 1px 3px rgba(0,0,0,.08)}
table{border-collapse:collapse;font-size:13px;margin:6px 0}\
th,td{padding:4px 9px;border-bottom:1px solid #eceef1;text-align:left}
th{background:#f7f8fa;font-weight:600}td.num{text-align:right;font-variant-numeric:tabular-nums}
tr.best td{font-weight:600}img{max-width:100%;display:block;margin:6px auto}
.note{color:#777;font-size:13px}.hit{background:#dff3e3}.tag{display:inline-block;font-size:11px;padding:1px 6px;
border-radius:9px;background:#eef0f4;color:#555;margin-left:4px}
.user{border-top:1px solid #e2e4e8;padding-top:10px;margin-top:14px}.cols{display:flex;gap:18px;flex-wrap:wrap}
.cols>div{flex:1 1 300px;min-width:0}.path{font-size:13px;margin:3px 0;padding:4px 8px;background:#f7f8fa;
border-left:3px solid #4C72B0;border-radius:3px}.bar{display:inline-block;height:10px;background:#4C72B0;
vertical-align:middle;margin-right:6px;border-radius:2px}.small{font-size:12px}\
ol{margin:4px 0;padding-left:22px;font-size:13px}
table.top10{width:100%;table-layout:fixed;font-size:12px}.top10 td{overflow-wrap:anywhere;vertical-align:top}
.top10 th:first-child,.top10 td:first-child{width:22px}.cols>.hist{flex:0 0 220px}.cols>.tops{flex:1 1 0;min-width:0}
.tag.neg{background:#fbe9e7;color:#a33}
"""


# ------------------------------------------------------------------------------------ reading
def load_run(run_dir: str | Path) -> dict[str, Any]:
    """The run's records as ``{"kind", "run", "models": {name: {...}}, "details"}``.

    Raises :class:`~kgrec.errors.KgrecError` naming ``'run_dir'`` when it is not a run directory.
    """
    d = Path(run_dir)
    if not d.is_dir():
        raise KgrecError(f"'run_dir' must be a directory written by 'kgrec demo' or 'kgrec train' (got '{d}': "
                         "no such directory)")

    def read(name: str):
        path = d / name
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise KgrecError(f"'{path}' line {e.lineno}: invalid JSON ({e.msg})") from None

    if (d / "results.json").is_file():
        run = read("results.json")
        models = run.get("models", {})
        kind = "demo"
    elif (d / "metrics.json").is_file():
        run = read("metrics.json")
        models = {run.get("model", "model"): {"params": run.get("params"), "fit_info": run.get("fit", {}),
                                               "test": run.get("test") or {}, "valid": run.get("valid")}}
        kind = "train"
    else:
        raise KgrecError(f"'run_dir' '{d}' holds neither results.json (kgrec demo) nor metrics.json (kgrec train)")
    details = read(REPORT_DATA) if (d / REPORT_DATA).is_file() else None
    return {"kind": kind, "dir": str(d), "run": run, "models": models, "details": details}


# ------------------------------------------------------------------------------------ plotting
def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode("ascii")}">'


def _plt():
    try:
        import matplotlib
    except ImportError:  # a dependency of kgrec, but an environment can lack it
        raise KgrecError("'kgrec report' draws its plots with matplotlib: pip install matplotlib") from None

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _color(names: list[str], name: str) -> str:
    return _COLORS[names.index(name) % len(_COLORS)] if name in names else "#333"


def _plot_metrics_vs_k(details: dict, names: list[str]) -> str:
    plt = _plt()
    ks = details["ks"]
    metrics = [("recall", "Recall@K"), ("ndcg", "NDCG@K"), ("hit", "Hit@K")]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, (m, title) in zip(axes, metrics):
        for name in details["models"]:
            vals = [details["metrics_by_k"][name].get(f"{m}@{k}") for k in ks]
            ax.plot(ks, vals, marker="o", label=name, color=_color(names, name))
        ax.set_xscale("log")
        ax.set_xticks(ks)
        ax.set_xticklabels([str(k) for k in ks])
        ax.set_title(title)
        ax.set_xlabel("K")
        ax.grid(alpha=.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    return _png(fig)


def _plot_curves(models: dict, names: list[str]) -> str | None:
    curves = {n: m.get("fit_info", {}).get("curve") for n, m in models.items()}
    curves = {n: c for n, c in curves.items() if c}
    if not curves:
        return None
    plt = _plt()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(13, 3.6))
    for name, c in curves.items():
        col = _color(names, name)
        val = [(r["epoch"], r["valid"]["ndcg@10"]) for r in c if r.get("valid")]
        if val:
            a1.plot(*zip(*val), marker=".", label=name, color=col)
            best = models[name].get("fit_info", {}).get("best_epoch")
            for e, v in val:
                if e == best:
                    a1.plot([e], [v], marker="*", markersize=13, color=col)
        trained = [r for r in c if r.get("loss") is not None]  # a validated start (epoch 0) has no loss
        a2.plot([r["epoch"] for r in trained], [r["loss"] for r in trained], label=name, color=col)
    a1.set_title("validation NDCG@10 (star: selected epoch)")
    a2.set_title("training loss (mean per pair)")
    for a in (a1, a2):
        a.set_xlabel("epoch")
        a.grid(alpha=.3)
        if a.get_legend_handles_labels()[0]:
            a.legend(fontsize=8)
    if not a1.lines:
        a1.text(0.5, 0.5, "no validation part", ha="center", va="center", transform=a1.transAxes, color="#777")
    fig.tight_layout()
    return _png(fig)


def _popularity_stats(pop: list[int], counts: list[int]) -> dict[str, float]:
    order = sorted(range(len(pop)), key=lambda i: -pop[i])
    head = set(order[:max(1, len(pop) // 10)])
    total = sum(counts) or 1
    rec_pop = sum(c * pop[i] for i, c in enumerate(counts)) / total
    xs = sorted(counts)
    n = len(xs)
    gini = (sum((2 * (j + 1) - n - 1) * x for j, x in enumerate(xs)) / (n * sum(xs))) if sum(xs) else 0.0
    return {"coverage": sum(1 for c in counts if c) / max(1, len(counts)),
            "head_share": sum(counts[i] for i in head) / total, "avg_popularity": rec_pop, "gini": gini}


def _plot_popularity(details: dict, names: list[str]) -> str:
    plt = _plt()
    pop = details["train_popularity"]
    order = sorted(range(len(pop)), key=lambda i: -pop[i])
    n = len(order)
    x = [100 * (j + 1) / n for j in range(n)]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(13, 3.8))

    def cumulative(values):
        tot = float(sum(values)) or 1.0
        acc, out = 0.0, []
        for i in order:
            acc += values[i]
            out.append(100 * acc / tot)
        return out

    a1.plot(x, cumulative(pop), color="black", linestyle="--", label="training interactions")
    for name in details["models"]:
        a1.plot(x, cumulative(details["top10_counts"][name]), label=name, color=_color(names, name))
    a1.set_xlabel("items, most popular first (share of the catalogue, log scale)")
    a1.set_ylabel("cumulative share (%)")
    a1.set_title("where the top-10s go: long tail")
    a1.set_xscale("log")
    from matplotlib.ticker import FixedLocator, FuncFormatter

    a1.xaxis.set_major_locator(FixedLocator([t for t in (0.01, 0.1, 1, 10, 100) if t >= x[0]]))
    a1.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}%"))
    a1.xaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    a1.grid(alpha=.3)
    a1.legend(fontsize=8)
    stats = {nm: _popularity_stats(pop, details["top10_counts"][nm]) for nm in details["models"]}
    a2.bar(range(len(stats)), [100 * s["coverage"] for s in stats.values()],
           color=[_color(names, nm) for nm in stats])
    a2.set_xticks(range(len(stats)))
    a2.set_xticklabels(list(stats), rotation=20, fontsize=9)
    a2.set_ylabel("% of catalogue")
    a2.set_title("coverage: items in anyone's top-10")
    a2.grid(alpha=.3, axis="y")
    fig.tight_layout()
    return _png(fig)


# ------------------------------------------------------------------------------------ html
def _e(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _num(v: Any, fmt: str = ".4f") -> str:
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return f'<td class="num">{format(v, fmt) if isinstance(v, float) and math.isfinite(v) else v}</td>'
    return "<td></td>" if v is None else f"<td>{_e(v)}</td>"


def _table(headers: list[str], rows: list[list[str]], cls: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(f"<tr>{''.join(r)}</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _metrics_section(run: dict) -> str:
    models = run["models"]
    order = ("recall", "ndcg", "hit", "mrr", "coverage", "avg_pop")
    keys = {k for m in models.values() for k in (m.get("test") or {}) if "@" in k and k.split("@")[0] in order}
    keep = sorted(keys, key=lambda k: (order.index(k.split("@")[0]),
                                       int(k.split("@")[1]) if k.split("@")[1].isdigit() else 0))
    best = {k: max((m.get("test") or {}).get(k, -math.inf) for m in models.values()) for k in keep}
    rows = []
    for name, m in models.items():
        t = m.get("test") or {}
        fi = m.get("fit_info") or {}
        cells = [f"<td><b>{_e(name)}</b></td>"]
        for k in keep:
            v = t.get(k)
            bold = v is not None and k.split("@")[0] not in ("avg_pop",) and v == best[k] and len(models) > 1
            cells.append(_num(v).replace('class="num"', 'class="num" style="font-weight:700"') if bold else _num(v))
        cells.append(_num(m.get("fit_seconds", fi.get("fit_seconds")), ".1f"))
        cells.append(_num(fi.get("best_epoch")))
        rows.append(cells)
    return _table(["model", *keep, "fit s", "best epoch"], rows)


def _explanation_html(exp: dict | None, compact: bool = False) -> str:
    if not exp:
        return '<p class="note">no explanation</p>'
    out = []
    if exp.get("paths"):
        for p in exp["paths"][: (1 if compact else 3)]:
            how = "score drop if removed" if p["method"] == "occlusion" else "history-item similarity"
            neg = p["weight"] < 0 and p["method"] == "occlusion"  # the path's edges do not support the item
            out.append(f'<div class="path">{_e(p["text"])} <span class="tag{" neg" if neg else ""}">{how} '
                       f'{p["weight"]:+.4f}{" (against)" if neg else ""}</span></div>')
    elif "paths" in exp.get("unavailable", {}):
        out.append(f'<p class="note">paths: {_e(exp["unavailable"]["paths"])}</p>')
    if compact:
        return "".join(out)
    if exp.get("shares"):
        total = sum(exp["shares"].values())
        parts = ", ".join(f"{_e(k)} {v:+.3f}" for k, v in exp["shares"].items())
        out.append(f'<p class="small"><b>score by branch</b>: {parts} (sum {total:.3f} = score {exp["score"]:.3f})</p>')
    if exp.get("attention"):
        mx = max(a["weight"] for a in exp["attention"]) or 1.0
        rows = "".join(f'<div class="small"><span class="bar" style="width:{int(90 * a["weight"] / mx)}px"></span>'
                       f'{a["weight"]:.3f} {_e(a["label"])}</div>' for a in exp["attention"][:5])
        out.append(f"<p class=\"small\"><b>history items the cross-attention weighted most</b></p>{rows}")
    if exp.get("history"):
        items = ", ".join(f"{_e(h['label'])} ({h['similarity']:+.2f})" for h in exp["history"][:5])
        out.append(f'<p class="small"><b>closest history items (model)</b>: {items}</p>')
    missing = {k: v for k, v in exp.get("unavailable", {}).items() if k != "paths"}
    if missing:
        out.append('<p class="note">' + "; ".join(f"{_e(k)}: {_e(v)}" for k, v in missing.items()) + "</p>")
    return "".join(out)


def _users_section(details: dict) -> str:
    names = details["models"]
    main = "hybrid" if "hybrid" in names else names[-1]
    blocks = []
    for s in details["samples"]:
        hist = "".join(f"<li>{_e(h['label'])}</li>" for h in s["history"])
        rows = []
        for r in range(10):
            cells = [f'<td class="num">{r + 1}</td>']
            for name in names:
                top = s["top"].get(name, [])
                if r < len(top):
                    t = top[r]
                    cells.append(f'<td class="{"hit" if t["hit"] else ""}" title="{_e(t["item"])}">'
                                 f'{_e(t["label"])}</td>')
                else:
                    cells.append("<td></td>")
            rows.append(cells)
        exps = s.get("explanations", {})
        others = "".join(f'<h3 class="small">{_e(n)}: top-1 "{_e(exps[n]["item_label"])}"</h3>'
                         f'{_explanation_html(exps[n], compact=True)}' for n in names if n != main and n in exps)
        main_exp = exps.get(main)
        title = f'why {_e(main)} puts "{_e(main_exp["item_label"])}" first' if main_exp else "explanation"
        blocks.append(
            f'<div class="user"><h3>{_e(s.get("user_label", s["user"]))} <span class="tag">{s["history_size"]} '
            f'training items</span><span class="tag">{len(s["test_items"])} test items (green = hit)</span></h3>'
            f'<div class="cols"><div class="hist"><b class="small">latest training items</b><ol>{hist}</ol>'
            f'</div><div class="tops">{_table(["#", *names], rows, "top10")}</div></div>'
            f'<h3>{title}</h3>{_explanation_html(main_exp)}{others}</div>')
    return "".join(blocks)


def render_report(run: dict) -> str:
    """The HTML page of a run loaded with :func:`load_run`."""
    r = run["run"]
    details = run["details"]
    names = list(run["models"])
    if details:
        names += [n for n in details["models"] if n not in names]
    graph = r.get("graph") or {}
    split = r.get("split") or {}
    data = r.get("data")
    data = ", ".join(data if isinstance(data, list) else (data or {}).get("paths", [])) if data else "?"
    sub = (f"{_e(run['kind'])} run in <code>{_e(run['dir'])}</code> · data {_e(data)} · "
           f"{graph.get('users', '?')} users, {graph.get('items', '?')} items, {graph.get('interactions', '?')} "
           f"interactions · split {_e(split.get('name', split.get('strategy', '?')))} "
           f"({split.get('train', '?')} train / {split.get('valid', '?')} valid / {split.get('test', '?')} test) · "
           f"kgrec {_e(r.get('kgrec_version', '?'))}")
    missing = '<p class="note">report.json is missing: re-run with this kgrec version to get this part.</p>'
    sec = {}
    sec["metrics"] = ("Test metrics (full ranking, training items masked; best in bold)", _metrics_section(run))
    sec["metrics-vs-k"] = ("Metrics vs K", _plot_metrics_vs_k(details, names) if details else missing)
    curves = _plot_curves(run["models"], names)
    sec["training"] = ("Training curves", curves or '<p class="note">no gradient-trained model in this run '
                       "(closed-form models have no epochs)</p>")
    if details:
        pop = details["train_popularity"]
        stats = {n: _popularity_stats(pop, details["top10_counts"][n]) for n in details["models"]}
        cat = sum(1 for p in pop if p) / max(1, len(pop))
        rows = [[f"<td><b>{_e(n)}</b></td>", _num(s["coverage"]), _num(s["head_share"]),
                 _num(s["avg_popularity"], ".1f"), _num(s["gini"])] for n, s in stats.items()]
        table = _table(["model", "coverage@10", "share to top-10% items", "avg. training popularity", "Gini"], rows)
        sec["popularity"] = ("Popularity, long tail and coverage", _plot_popularity(details, names) + table
                             + f'<p class="note">Catalogue: {len(pop)} items, {100 * cat:.1f}% with a training '
                               "interaction. Top-10 of every user, training items masked.</p>")
        sec["users"] = ("Sample users: history, top-10 and explanations", _users_section(details))
    else:
        sec["popularity"] = ("Popularity, long tail and coverage", missing)
        sec["users"] = ("Sample users: history, top-10 and explanations", missing)
    body = "".join(f'<section id="{sid}"><h2>{_e(sec[sid][0])}</h2>{sec[sid][1]}</section>' for sid in SECTIONS)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>kgrec report</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head>'
            f'<body><main><h1>kgrec report</h1><div class="sub">{sub}</div>{body}</main></body></html>\n')


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Render ``run_dir`` into ``out`` (default ``run_dir/report.html``); return the path."""
    run = load_run(run_dir)
    path = Path(out) if out is not None else Path(run_dir) / "report.html"
    return atomic_write_text(path, render_report(run))
