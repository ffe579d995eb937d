"""``docs/findings/scaling.md``: the scaling study's page, made from one finished run (``results/scaling``).

    python -m equidyn.cli publish-scaling --results results/scaling --docs docs

It copies the three tables (``docs/findings/scaling.csv``, ``scaling_fits.csv``, ``scaling_gaps.csv``) and the
figures (``docs/img/findings/scaling/``), and writes what a reader needs to judge them: the grid that ran, whether
every arm learned (skill over its own skip) and every curve flattened, the fitted exponents with their intervals
(and which fits the data do not constrain), the gap between arms and its trend per decade, the crossovers, and
the answer. The answer is the author's reading, in ``docs/findings/scaling/answer.md``, kept across reruns like the
other findings pages; without it the page says plainly that nobody has read the numbers yet. Nothing is invented:
a table the run lacks is an error that names it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from .atomic import atomic_path, write_csv, write_text
from .findings import _fmt, _lineage

TABLES = ("scaling", "scaling_fits", "scaling_gaps")


def _ci(row: Any, value: str, low: str, high: str, digits: int = 3) -> str:
    return f"{_fmt(row[value], digits)} [{_fmt(row[low], digits)}, {_fmt(row[high], digits)}]"


def _grid_lines(runs) -> list[str]:
    lines = []
    for level, at in runs.groupby("level"):
        arms = ", ".join(sorted(at.model.unique()))
        params = at[at.sweeps.str.contains("sizes")].params
        windows = sorted(at[at.sweeps.str.contains("data")].train_windows.unique())
        seeds = at.groupby(["model", "size", "fraction"]).seed.nunique()
        # a page made from the parts kept so far may hold only one sweep of a level
        sizes = (
            f"parameters {int(params.min()):,}–{int(params.max()):,} ({_fmt(float(params.max() / params.min()), 3)}×)"
            if len(params)
            else "no size sweep in this table"
        )
        lines.append(
            f"- level {level}: {arms}; {sizes}; "
            f"{'training windows ' + ', '.join(map(str, windows)) if windows else 'no data sweep in this table'}; "
            f"{int(seeds.min())}–{int(seeds.max())} seeds per point; {len(at)} runs, "
            f"{int(at.flattened.sum())} flattened (largest remaining change {_fmt(at.rel_change_last20.max(), 2)}); "
            f"{_fmt(at.train_seconds.sum() / 3600, 3)} h of training wall time."
        )
    return lines


def _learned_lines(runs) -> list[str]:
    """Did every arm learn? Its skill over its own skip (linear extrapolation), per level and point, with a t CI."""
    from .stats import mean_ci

    lines = [
        "| level | arm | size | fraction | skill over own skip, mean [95 % CI] | learned |",
        "|---|---|---:|---:|---|---|",
    ]
    for (level, model, size, fraction), g in runs.groupby(["level", "model", "size", "fraction"]):
        est = mean_ci(g.skill_vs_skip.dropna().tolist())
        learned = "yes" if est.ci_low > 0 else "**no**"
        lines.append(
            f"| {level} | {model} | {size} | {fraction:g} | {_fmt(est.mean)} [{_fmt(est.ci_low)}, "
            f"{_fmt(est.ci_high)}] | {learned} |"
        )
    return lines


def _fit_lines(fits) -> list[str]:
    lines = [
        "| level | arm | axis | exponent α [95 % CI] | L∞ [95 % CI] | constrained | local slope [95 % CI] |",
        "|---|---|---|---|---|---|---|",
    ]
    for _, r in fits.iterrows():
        if not isinstance(r.get("x_column"), str):
            lines.append(f"| {r.level} | {r.arm} | {r.axis} | — | — | no: {r.why_not_constrained} | — |")
            continue
        why = "yes" if bool(r.constrained) else f"no: {r.why_not_constrained}"
        lines.append(
            f"| {r.level} | {r.arm} | {r.axis} | {_ci(r, 'exponent', 'exponent_ci_low', 'exponent_ci_high')} | "
            f"{_ci(r, 'l_inf', 'l_inf_ci_low', 'l_inf_ci_high')} | {why} | "
            f"{_ci(r, 'slope', 'slope_ci_low', 'slope_ci_high')} |"
        )
    return lines


def _trend_lines(gaps) -> list[str]:
    if "kind" not in gaps:
        return ["No pair of arms in this run."]
    trend = gaps[gaps.kind == "trend"]
    lines = [
        "| level | arm vs reference | axis | mean log ratio | slope per decade [95 % CI] | p | verdict | "
        "Holm p | Holm verdict |",
        "|---|---|---|---:|---|---:|---|---:|---|",
    ]
    for _, r in trend.iterrows():
        lines.append(
            f"| {r.level} | {r.arm} vs {r.reference} | {r.axis} | {_fmt(r.mean_gap)} | "
            f"{_ci(r, 'effect', 'ci_low', 'ci_high')} | {_fmt(r.get('p_value'), 2)} | {r.verdict} | "
            f"{_fmt(r.get('p_holm'), 2)} | {r.get('verdict_holm', '')} |"
        )
    return lines


def _trend_difference_lines(gaps) -> list[str]:
    if "kind" not in gaps or not (gaps.kind == "trend_difference").any():
        return ["Only one level in this run: no difference of trends between levels."]
    rows = gaps[gaps.kind == "trend_difference"]
    lines = [
        "| level − reference level | arm vs reference | axis | difference of slopes per decade [95 % CI] | p | "
        "Holm p | Holm verdict |",
        "|---|---|---|---|---:|---:|---|",
    ]
    for _, r in rows.iterrows():
        lines.append(
            f"| {r.level} − {int(r.reference_level)} | {r.arm} vs {r.reference} | {r.axis} | "
            f"{_ci(r, 'effect', 'ci_low', 'ci_high')} | {_fmt(r.p_value, 2)} | {_fmt(r.p_holm, 2)} | "
            f"{r.verdict_holm} |"
        )
    return lines


def _resolved_gap_lines(gaps) -> list[str]:
    """The per-point gaps whose 95 % interval excludes 0, with their Holm-adjusted p (the rest are not resolved)."""
    if "kind" not in gaps:
        return ["No pair of arms in this run."]
    gap = gaps[(gaps.kind == "gap") & (gaps.verdict != "not resolved")]
    if gap.empty:
        return ["No per-point gap excludes 0 at 95 %."]
    lines = [
        "| level | arm vs reference | axis | point | log ratio [95 % CI] | p | Holm p | Holm verdict |",
        "|---|---|---|---|---|---:|---:|---|",
    ]
    for _, r in gap.iterrows():
        point = f"size {r['size']:g}" if r.axis == "params" else f"fraction {r['fraction']:g}"
        lines.append(
            f"| {r.level} | {r.arm} vs {r.reference} | {r.axis} | {point} | {_ci(r, 'effect', 'ci_low', 'ci_high')} "
            f"| {_fmt(r.p_value, 2)} | {_fmt(r.get('p_holm'), 2)} | {r.get('verdict_holm', '')} |"
        )
    return lines


def _crossover_lines(gaps) -> list[str]:
    if "kind" not in gaps:
        return ["No pair of arms in this run."]
    cross = gaps[gaps.kind == "crossover"]
    lines = [
        "| level | arm vs reference | axis | range | crossing [95 % CI] | share of refits crossing | verdict |",
        "|---|---|---|---|---|---:|---|",
    ]
    for _, r in cross.iterrows():
        where = _ci(r, "x", "ci_low", "ci_high") if r.verdict != "no crossover in range" else "—"
        lines.append(
            f"| {r.level} | {r.arm} vs {r.reference} | {r.axis} | {_fmt(r.x_low)}–{_fmt(r.x_high)} | {where} | "
            f"{_fmt(r.share_crossing, 2)} | {r.verdict}{'' if r.fits_constrained else ' (fits not constrained)'} |"
        )
    return lines


def publish(results: str | os.PathLike, docs: str | os.PathLike) -> Path:
    """Write ``docs/findings/scaling.md`` with its tables and figures from the run in ``results``."""
    import pandas as pd

    results, docs = Path(results), Path(docs)
    frames = {}
    for name in TABLES:
        path = results / "tables" / f"{name}.csv"
        if not path.exists():
            raise FileNotFoundError(f"{path}: the run has no {name} table (run the `scaling_all` target first)")
        frames[name] = pd.read_csv(path)
    tables_dir, img_dir, out = (
        docs / "findings",
        docs / "img" / "findings" / "scaling",
        docs / "findings" / "scaling.md",
    )
    img_dir.mkdir(parents=True, exist_ok=True)
    for name, df in frames.items():
        write_csv(df, tables_dir / f"{name}.csv")
    figures = sorted((results / "figures").glob("scaling_*.png"))
    for fig in figures:
        with atomic_path(img_dir / fig.name) as tmp:
            shutil.copyfile(fig, tmp)
    runs, fits, gaps = frames["scaling"], frames["scaling_fits"], frames["scaling_gaps"]
    img_link = Path(os.path.relpath(img_dir, out.parent)).as_posix()
    lines = [
        "# Does the answer change with scale? (the scaling study)",
        "",
        f"What equidyn measured in the run `{results.name}` ({_lineage(runs)}), published by "
        f"`equidyn publish-scaling --results {results} --docs {docs}`. How it was run and what it cost: "
        'docs/reproduction.md, "The scaling study"; why it is built this way: docs/decisions.md, "The scaling '
        'study". Tables: [scaling.csv](scaling.csv) (one row per run), [scaling_fits.csv](scaling_fits.csv), '
        "[scaling_gaps.csv](scaling_gaps.csv).",
        "",
    ]
    answer = tables_dir / "scaling" / "answer.md"
    if answer.exists():
        lines += [answer.read_text().rstrip(), ""]
    else:
        lines += ["*No reading of these numbers has been written yet (docs/findings/scaling/answer.md).*", ""]
    lines += ["## What ran", "", *_grid_lines(runs), ""]
    lines += [
        "## Did every arm learn?",
        "",
        "Test skill over the forecast the arm's own skip implements (linear "
        "extrapolation), mean and 95 % t interval over seeds; an arm learned where the interval lies above 0.",
        "",
        *_learned_lines(runs),
        "",
    ]
    lines += [
        "## Fitted exponents",
        "",
        "L(x) = L∞ + A·x^−α on the log scale, 95 % percentile-bootstrap intervals "
        "over seeds (3 seeds per point make them somewhat narrow); a fit is *constrained* only if α ends inside "
        "its bounds in the fit and in ≥ 90 % of the refits. The local slope (a pure power law) is always "
        "measured.",
        "",
        *_fit_lines(fits),
        "",
    ]
    lines += [
        "## The gap between arms, and its trend with scale",
        "",
        "Slope of log(RMSE_arm / RMSE_reference) per "
        "decade of the axis (Welch–Satterthwaite t interval); negative: the arm gains on the reference as the "
        "axis grows. Holm: adjusted over the six pairs of arms asked the same question (same level and axis).",
        "",
        *_trend_lines(gaps),
        "",
        "Does breaking the symmetry change the trend? The trend at the broken level minus the trend at level 0 "
        "(independent runs: Welch–Satterthwaite t interval); positive: at the broken level the arm loses ground to "
        "the reference faster with scale than at exact symmetry.",
        "",
        *_trend_difference_lines(gaps),
        "",
        "Per-point gaps whose 95 % Welch interval on the log ratio excludes 0 (all per-point gaps are the `gap` "
        "rows of scaling_gaps.csv); Holm over the pairs of arms at the same point.",
        "",
        *_resolved_gap_lines(gaps),
        "",
    ]
    lines += ["## Crossovers of the fitted curves", "", *_crossover_lines(gaps), ""]
    lines += ["## Figures", ""]
    for fig in figures:
        lines += [f"### {fig.stem}", "", f"![{fig.stem}]({img_link}/{fig.name})", ""]
    if not figures:
        lines.append("No figures in this run.")
    write_text(out, "\n".join(lines).rstrip() + "\n")
    return out
