"""Publish a finished run's answer where a reader finds it without running anything: ``docs/findings.md``.

``results/`` is not kept between machines, so a study's outcome only survives as what is committed. This module
copies the run's claims table and its key summary tables (small CSVs) to ``docs/findings/``, its figures as PNG to
``docs/img/findings/``, and writes ``docs/findings.md``: one paragraph per claim (what the seed paper says, the
effect equidyn measured with its 95 % CI over seeds, the verdict, and for "not resolved" the number of seeds the
observed variance says would resolve it), then the baselines, the convergence check and every table and figure,
each with the lineage (commit, config hash) of the run that made it.

It reads only the run's tables and figures (pandas, no torch), so it is quick and testable on a synthetic tree.
A findings page made from the demo would present demo numbers as findings: the page says which run it comes from,
and flags every claim below :data:`MIN_SEEDS` seeds.
"""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path
from typing import Any

from .atomic import atomic_path, write_csv, write_text

#: the issue's floor for a claim to count: fewer seeds are flagged in the text
MIN_SEEDS = 5
#: summary tables copied next to the claims table (when the run has them), in the order the page lists them
KEY_TABLES = (
    "levels_summary",
    "data_equivariance",
    "rotation_summary",
    "superres_summary",
    "tutorial",
    "tutorial_ceiling",
    "dynamics",
    "convergence",
    # the exponax study (issue 24): its summary, the flows' data EE and the per-run table the claims are made from
    "exponax_summary",
    "exponax_data_equivariance",
    "exponax",
)
SOURCES = {
    "BLOG": "the BLOG post on relaxed equivariance and training dynamics (docs/references.md [BLOG])",
    "W22": "Wang et al. 2022, approximately equivariant networks (docs/references.md [W22])",
    "W24": "Wang et al. 2024, relaxed group convolutions (docs/references.md [W24])",
    "TUT": "the rotation-equivariance tutorial (docs/references.md [TUT])",
}
EFFECT_KINDS = {
    "log_ratio": "log ratio log(a/b) (−0.1 ≈ a is 10 % lower)",
    "log_ratio_of_means": "log of the ratio of means (−0.1 ≈ a's mean is 10 % lower)",
    "relative_difference": "relative difference (a − b)/|mean b| per seed",
    "correlation": "correlation over levels per seed",
    "relative_change": "relative change per seed",
    "difference": "difference a − b per seed",
}
#: the interval methods of claims.csv's ``ci_method`` (equidyn.stats.METHODS), as the page words them
CI_METHODS = {
    "paired_t_log_ratio": "paired t on per-seed log ratios",
    "welch_log_ratio": "Welch t on logs, unpaired",
    "fieller_ratio_of_means": "Fieller interval for the ratio of means",
    "fisher_z_t": "t on Fisher z, back-transformed",
    "t": "t on per-seed values",
}
ROLE_SECTIONS = (
    (
        "primary",
        "Primary claims",
        "One primary statistic per claim family (test error, flatness, EE), declared in "
        "`equidyn.studies.claims.PRIMARY` before the run; their verdicts are also given Holm-adjusted over all primary "
        'claims together, so that the chance of any false "supported" among them stays at or below 5 %.',
    ),
    (
        "secondary",
        "Secondary claims",
        "Descriptive: other checkpoints, quantities and controls. Their verdicts are "
        "per claim, with no correction for how many are shown; read them as description, not as tests.",
    ),
    (
        "check",
        "Checks",
        "Not findings: a property the software guarantees (an exactly equivariant model), shown as a check that "
        "the pipeline measures what it should, and the precondition of every level-0 comparison that each arm has "
        "learned (its skill over the trivial forecast its skip implements is above 0).",
    ),
)


def _fmt(x: Any, digits: int = 3) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    return "n/a" if not math.isfinite(v) else f"{v:.{digits}g}"


def _lineage(df) -> str:
    """``commit X, config Y`` from a table's lineage columns (every distinct value, so a mixed run shows)."""
    parts = []
    columns = (("git_rev", "commit"), ("config_sha", "config"), ("measure_git_rev", "measures at commit"))
    for col, name in columns:
        if col in df:
            values = sorted({str(v) for v in df[col].dropna() for v in str(v).split(";") if v})
            parts.append(f"{name} {', '.join(values) if values else 'unknown'}")
    return "; ".join(parts) if parts else "no lineage columns"


def claim_paragraph(row: dict[str, Any]) -> str:
    """One claim, as a reader needs it: claim, seed source, measured effect with CI, verdict, seeds needed."""
    source = SOURCES.get(str(row["source"]), str(row["source"]))
    n = int(row["n_seeds"]) if _fmt(row["n_seeds"]) != "n/a" else 0
    checkpoint = str(row.get("checkpoint", ""))
    at = "" if checkpoint in ("", "nan") else f", checkpoint {checkpoint}"
    method = str(row.get("ci_method", "") or "")
    design = ""
    if method and method != "nan":
        paired = str(row.get("paired", "")).lower() == "true"
        design = f"; {CI_METHODS.get(method, method)}, {'paired on seed' if paired else 'unpaired'}"
    text = (
        f"**{row['claim']}** — {row['quantity']}, {row['comparison']}{at}.  \n"
        f"*Seed:* {source} claims {row['claimed']}.  \n"
        f"*Measured:* effect {_fmt(row['effect'])} (95 % CI [{_fmt(row['ci_low'])}, {_fmt(row['ci_high'])}], "
        f"{n} seeds; {EFFECT_KINDS.get(str(row['effect_kind']), str(row['effect_kind']))}{design}).  \n"
        f"*Verdict:* **{row['verdict']}**."
    )
    holm = str(row.get("verdict_holm", "") or "")
    if holm and holm != "nan":
        text += f" Holm-adjusted over the primary claims: **{holm}** (p {_fmt(row.get('p_holm'))})."
    needed = _fmt(row.get("seeds_needed_80pct_power", row.get("seeds_needed")), 4)
    if row["verdict"] == "not resolved" or (holm and holm != "nan" and holm != row["verdict"]):
        if "seeds_needed_80pct_power" in row:
            low, high = _fmt(row.get("seeds_needed_low"), 4), _fmt(row.get("seeds_needed_high"), 4)
            text += (
                f" At the observed mean and seed-to-seed spread, about {needed} seeds per arm give 80 % power "
                f"({low}–{high} over the spread's 95 % interval)."
                if needed != "n/a"
                else " The run has too few seeds to estimate how many would resolve it."
            )
        else:  # a table from before issue 21: the count at which the interval would just exclude 0 (~50 % power)
            text += (
                f" At the observed mean and seed-to-seed spread, about {needed} seeds would resolve it."
                if needed != "n/a"
                else " The run has too few seeds to estimate how many would resolve it."
            )
    if n < MIN_SEEDS:
        text += f" (Only {n} seeds: below the {MIN_SEEDS} a finding needs.)"
    return text


def _baseline_lines(tables: dict[str, Any]) -> list[str]:
    """Per summary table with baseline columns: how many model rows beat the trivial baseline (skill CI > 0)."""
    lines = []
    checks = (
        ("levels_summary", "test_rmse_skill", "persistence, test RMSE"),
        ("rotation_summary", "rmse_future_skill", "persistence, test-future RMSE"),
        ("rotation_summary", "rmse_domain_skill", "persistence, test-domain RMSE"),
        ("superres_summary", "test_mae_skill", "interpolated input, test MAE"),
    )
    for name, col, what in checks:
        df = tables.get(name)
        if df is None or col not in df:
            continue
        rows = df if "checkpoint" not in df else df[df["checkpoint"] == "best"]
        beat = int((rows[f"{col}_ci_low"] > 0).sum())
        worst = rows.loc[rows[col].idxmin()]
        label = f"{worst['model']} α={worst['alpha']}" + (f" level {worst['level']}" if "level" in rows else "")
        lines.append(
            f"- `{name}.csv` ({what}): {beat} of {len(rows)} model rows beat the baseline with 95 % confidence "
            f"(skill = 1 − model/baseline, CI above 0); lowest skill {_fmt(worst[col])} ({label})."
        )
    lv = tables.get("levels_summary")
    if lv is not None and "linear_extrapolation_test_rmse" in lv and lv["linear_extrapolation_test_rmse"].notna().any():
        rows = lv if "checkpoint" not in lv else lv[lv["checkpoint"] == "best"]
        ref = rows["linear_extrapolation_test_rmse"]
        better, worse = int((rows["test_rmse_ci_high"] < ref).sum()), int((rows["test_rmse_ci_low"] > ref).sum())
        lines.append(
            f"- `levels_summary.csv` (linear extrapolation of the two input frames, test RMSE — the skip the level "
            f"models correct): {better} of {len(rows)} model rows beat it with 95 % confidence, {worse} are worse, "
            f"{len(rows) - better - worse} indistinguishable."
        )
    ex = tables.get("exponax_summary")
    if ex is not None and "beats_trivial_95" in ex:
        rows = ex[ex["checkpoint"] == "best"]
        beat = int(rows["beats_trivial_95"].astype(str).str.lower().eq("true").sum())
        worst = rows.loc[rows["test_rmse_skill_vs_linear_extrapolation"].idxmin()]
        lines.append(
            f"- `exponax_summary.csv` (persistence and the linear extrapolation, test RMSE on the held-out "
            f"trajectories): {beat} of {len(rows)} (arm, flow) rows beat both with 95 % confidence; lowest skill "
            f"over the linear extrapolation {_fmt(worst['test_rmse_skill_vs_linear_extrapolation'])} "
            f"({worst['model']} α={worst['alpha']}, {worst['flow']})."
        )
    tut = tables.get("tutorial")
    if tut is not None and "r2" in tut:
        un = tut[tut["rotation"] == 0] if "rotation" in tut else tut
        lines.append(
            f"- `tutorial.csv` (the mean prediction, R² = 0): {int((un['r2'] > 0).sum())} of {len(un)} unrotated "
            f"rows have R² > 0; lowest R² {_fmt(un['r2'].min())}."
        )
    return lines


def _convergence_lines(conv) -> list[str]:
    if conv is None:
        return ["No `convergence.csv` in this run."]
    lines = []
    for study, g in conv.groupby("study"):
        flat = int(g["flattened"].astype(str).str.lower().eq("true").sum())
        lines.append(
            f"- {study}: {flat} of {len(g)} runs flattened (best validation loss changed < 5 % over the last 20 % of "
            f"epochs); largest change {_fmt(g['rel_change_last20'].max())}."
        )
    return lines


def publish(
    results: str | os.PathLike,
    docs: str | os.PathLike,
    page: str | None = None,
    include_page: list[str] | None = None,
) -> Path:
    """Write ``docs/findings.md``, ``docs/findings/*.csv`` and ``docs/img/findings/*.png`` from ``results``.

    ``results`` is one run's directory (``results/laptop``) with ``tables/claims.csv``; tables and figures it
    lacks are left out of the page (and said so), never invented. ``page`` publishes a second study beside the
    first without touching it: ``docs/findings/<page>.md`` with its tables in ``docs/findings/<page>/`` and its
    figures in ``docs/img/findings/<page>/`` (the held-out level study: ``--page heldout``).

    ``include_page`` (main page only): pages published before, whose claims join this run's in
    ``docs/findings/claims.csv`` — one table with the *published protocol* rows and the *generalisation* rows (the
    ``protocol`` column tells them apart, ``run`` names the page), as issue 20 asks; the page counts each page's
    verdicts and links it. A listed page that has not been published is an error naming it.
    """
    import pandas as pd

    results, docs = Path(results), Path(docs)
    claims_path = results / "tables" / "claims.csv"
    if not claims_path.exists():
        raise FileNotFoundError(f"{claims_path}: the run has no claims table (run the `claims_all` target first)")
    claims = pd.read_csv(claims_path)
    if page:
        tables_dir, img_dir = docs / "findings" / page, docs / "img" / "findings" / page
        out = docs / "findings" / f"{page}.md"
    else:
        tables_dir, img_dir = docs / "findings", docs / "img" / "findings"
        out = docs / "findings.md"
    # links relative to the page, wherever it lies
    table_link = Path(os.path.relpath(tables_dir, out.parent)).as_posix()
    img_link = Path(os.path.relpath(img_dir, out.parent)).as_posix()
    tables_dir.mkdir(parents=True, exist_ok=True)
    img_dir.mkdir(parents=True, exist_ok=True)
    included = []
    if include_page and page:
        raise ValueError("--include-page joins other pages' claims into the main page's table; not with --page")
    for other in include_page or []:
        path = docs / "findings" / other / "claims.csv"
        if not path.exists():
            raise FileNotFoundError(f"{path}: publish the {other!r} page first (publish-findings --page {other})")
        included.append((other, pd.read_csv(path)))
    combined = pd.concat(
        [claims.assign(run=results.name), *(df.assign(run=other) for other, df in included)], ignore_index=True
    )
    write_csv(combined if included else claims, tables_dir / "claims.csv")

    tables: dict[str, Any] = {}
    for name in KEY_TABLES:
        path = results / "tables" / f"{name}.csv"
        if path.exists():
            tables[name] = pd.read_csv(path)
            write_csv(tables[name], tables_dir / f"{name}.csv")
    figures = sorted((results / "figures").glob("*.png"))
    for fig in figures:
        with atomic_path(img_dir / fig.name) as tmp:
            shutil.copyfile(fig, tmp)

    run_lineage = _lineage(pd.concat([claims, *tables.values()], ignore_index=True))
    n_seeds = claims["n_seeds"].dropna()
    lines = [
        "# Findings",
        "",
        f"What equidyn measured in the run `{results.name}` ({run_lineage}), published by "
        f"`equidyn publish-findings --results {results} --docs {docs}`. How the run was made and what it cost: "
        "docs/reproduction.md. Every effect is a comparison across seeds with a 95 % CI, paired where two arms "
        "share their seeds and Welch where they do not; the `paired` and `ci_method` columns say which "
        "(docs/decisions.md).",
        "",
        f"{len(claims)} claims; verdicts: "
        + ", ".join(f"{v} {c}" for v, c in claims["verdict"].value_counts().items())
        + f"; seeds per claim {int(n_seeds.min()) if len(n_seeds) else 0}–{int(n_seeds.max()) if len(n_seeds) else 0}"
        + f". Table: [{table_link}/claims.csv]({table_link}/claims.csv).",
        "",
    ]
    for other, df in included:
        counts = ", ".join(f"{v} {c}" for v, c in df["verdict"].value_counts().items())
        protocols = ", ".join(sorted(set(map(str, df.get("protocol", pd.Series(["?"]))))))
        lines += [
            f"The same table holds the {len(df)} claims of [{other}](findings/{other}.md) (`run` = `{other}`; "
            f"protocol: {protocols}; verdicts: {counts}).",
            "",
        ]
    answer = tables_dir / "answer.md" if page else docs / "findings" / "answer.md"
    if answer.exists():  # the author's reading of the numbers below, kept in a file of its own so a rerun keeps it
        lines += [answer.read_text().rstrip(), ""]
    lines += ["## Claims", ""]
    if "role" in claims:  # primary and secondary apart (issue 21), the primary ones with Holm-adjusted verdicts
        for role, title, intro in ROLE_SECTIONS:
            part = claims[claims["role"] == role]
            if part.empty:
                continue
            lines += [f"### {title}", "", intro, ""]
            if role == "primary" and "verdict_holm" in part:
                counts = part["verdict_holm"].value_counts()
                lines += ["Holm-adjusted verdicts: " + ", ".join(f"{v} {c}" for v, c in counts.items()) + ".", ""]
            for _, row in part.iterrows():
                lines += [claim_paragraph(row.to_dict()), ""]
    else:
        for _, row in claims.iterrows():
            lines += [claim_paragraph(row.to_dict()), ""]
    lines += ["## Trivial baselines", "", *(_baseline_lines(tables) or ["No baseline columns in this run."]), ""]
    lines += ["## Convergence", "", *_convergence_lines(tables.get("convergence")), ""]
    lines += ["## Tables", ""]
    for name, df in tables.items():
        lines.append(f"- [{table_link}/{name}.csv]({table_link}/{name}.csv) — {len(df)} rows; {_lineage(df)}")
    missing = [n for n in KEY_TABLES if n not in tables]
    if missing:
        lines.append(f"- not in this run: {', '.join(missing)}")
    lines += ["", "## Figures", ""]
    for fig in figures:
        lines += [f"### {fig.stem}", "", f"![{fig.stem}]({img_link}/{fig.name})", "", f"Run: {run_lineage}.", ""]
    if not figures:
        lines.append("No figures in this run.")
    write_text(out, "\n".join(lines).rstrip() + "\n")
    return out
