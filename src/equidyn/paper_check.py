"""The paper-scale execution check's report: each job's peak memory and time, and the cluster requests they imply.

    python -m equidyn.paper_check RESULTS_DIR [--wall SECONDS] [--margin 1.5] [--out table.md]

``RESULTS_DIR`` is the check's ``results/paper_check`` (scripts/paper_check.sh passes it). Every job wrote a
Snakemake ``benchmark:`` file (wall seconds ``s``, peak resident memory ``max_rss`` in MB); each becomes a row, with
the rule class its resources come from (``data``, ``train``, ``analysis``, ``report``, as in the config's
``resources:`` section). The suggested ``mem_mb`` of a class is its largest measured peak times ``margin``, rounded
up to a whole GB — the check runs the paper's shapes, so memory carries over to the cluster; its *times* do not
(epochs, batches and loops are truncated, and a cluster job runs on a GPU), so runtimes are reported, not derived.

Stdlib only: it runs after the workflow, in any Python.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path

MEASURES = ("lie", "sharpness", "hessian")


def rule_class(relative: Path) -> str:
    """The resource class of a job from its benchmark path (below ``benchmarks/``), as the rule files assign it."""
    parts = relative.parts
    if parts[0] in ("tables", "figures"):
        return "report"
    if parts[0] == "runs":
        return "train" if relative.stem == "train" else "analysis"
    if "data_ee" in relative.stem:
        return "analysis"
    return "data"


def collect(results_dir: str | Path) -> list[dict[str, object]]:
    """One row per benchmark file below ``results_dir/benchmarks``: job, class, seconds, peak RSS (MB)."""
    root = Path(results_dir) / "benchmarks"
    rows = []
    for path in sorted(root.rglob("*.tsv")):
        with path.open() as handle:
            records = list(csv.DictReader(handle, delimiter="\t"))
        if not records:
            continue
        last = records[-1]  # a rerun appends; the last line is the run that produced the outputs
        relative = path.relative_to(root)
        rss = last.get("max_rss", "NA")
        rows.append(
            {
                "job": str(relative.with_suffix("")),
                "class": rule_class(relative),
                "seconds": float(last["s"]),
                "max_rss_mb": float(rss) if rss not in ("NA", "", None) else math.nan,
            }
        )
    return rows


def suggested_requests(rows: list[dict[str, object]], margin: float = 1.5) -> dict[str, dict[str, float]]:
    """Per class: the largest measured peak, its job, and ``mem_mb`` = peak × margin rounded up to 1000 MB."""
    out: dict[str, dict[str, float]] = {}
    for row in rows:
        rss = float(row["max_rss_mb"])  # type: ignore[arg-type]
        if math.isnan(rss):
            continue
        best = out.get(str(row["class"]))
        if best is None or rss > best["peak_mb"]:
            out[str(row["class"])] = {"peak_mb": rss, "job": row["job"]}  # type: ignore[dict-item]
    for values in out.values():
        values["mem_mb"] = 1000 * math.ceil(values["peak_mb"] * margin / 1000)
    return out


def markdown(rows: list[dict[str, object]], margin: float, wall: float | None) -> str:
    lines = []
    if wall is not None:
        lines += [f"wall time of the check: {wall / 60:.1f} min; {len(rows)} jobs", ""]
    lines += ["| job | class | time (s) | peak RSS (MB) |", "|---|---|---:|---:|"]
    for row in sorted(rows, key=lambda r: (str(r["class"]), -float(r["max_rss_mb"]))):  # type: ignore[arg-type]
        lines.append(f"| {row['job']} | {row['class']} | {row['seconds']:.1f} | {row['max_rss_mb']:.0f} |")
    lines += ["", f"| class | largest peak (MB) | its job | suggested mem_mb (× {margin}) |", "|---|---:|---|---:|"]
    for kind, values in sorted(suggested_requests(rows, margin).items()):
        lines.append(f"| {kind} | {values['peak_mb']:.0f} | {values['job']} | {values['mem_mb']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results_dir", type=Path)
    p.add_argument("--wall", type=float, default=None, help="the check's wall time in seconds, for the header")
    p.add_argument("--margin", type=float, default=1.5)
    p.add_argument("--out", type=Path, default=None)
    args = p.parse_args(argv)
    rows = collect(args.results_dir)
    if not rows:
        print(f"no benchmark files below {args.results_dir / 'benchmarks'}", file=sys.stderr)
        return 1
    text = markdown(rows, args.margin, args.wall)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
