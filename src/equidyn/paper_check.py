"""The paper-scale execution check's report: each job's peak memory and time, and the cluster requests they imply.

    python -m equidyn.paper_check RESULTS_DIR [--wall SECONDS] [--margin 1.5] [--out table.md]

``RESULTS_DIR`` is the check's ``results/paper_check`` (scripts/paper_check.sh passes it). Every job wrote a
Snakemake ``benchmark:`` file (wall seconds ``s``, peak resident memory ``max_rss`` in MB); each becomes a row, with
the rule class its resources come from (``data``, ``train``, ``analysis``, ``report``, as in the config's
``resources:`` section). The suggested ``mem_mb`` of a class is its largest measured peak times ``margin``, rounded
up to a whole GB — the check runs the paper's shapes, so memory carries over to the cluster; its *times* do not
(epochs, batches and loops are truncated, and a cluster job runs on a GPU), so runtimes are reported, not derived.

Two things the check cannot run on a 24 GB CPU machine are *estimated*, and marked so: the super-resolution
training at the paper batch (the check trains at batch 1; ``--batch-scale superres=4`` scales its peak linearly,
activations being linear in the batch), and the measure jobs of models it trains but does not measure (the 64³
O_h GCNN/RGCNN Hessians): their peak is the model's training peak times the largest measured measure/training
ratio of the same study.

Stdlib only: it runs after the workflow, in any Python.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from collections.abc import Callable, Hashable
from pathlib import Path

MEASURES = ("lie", "sharpness", "hessian")


def rule_class(relative: Path) -> str:
    """The resource class of a job from its benchmark path (below ``benchmarks/``), as the rule files assign it."""
    parts = relative.parts
    if parts[0] in ("tables", "figures", "convergence"):
        return "report"
    if parts[0] == "runs":
        return "train" if relative.stem == "train" else "analysis"
    if "data_ee" in relative.stem or parts[0] == "baselines":
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


def batch_scales(paper: dict, check: dict) -> dict[str, float]:
    """Paper batch / check batch of every study whose check trains at a smaller batch (merged configs)."""
    out = {}
    for study, section in check.items():
        if isinstance(section, dict) and "training" in section and isinstance(paper.get(study), dict):
            ratio = paper[study]["training"]["batch_size"] / section["training"]["batch_size"]
            if ratio != 1:
                out[study] = ratio
    return out


def _study_model(job: str) -> tuple[str, str] | None:
    parts = job.split("/")
    return (parts[1], parts[2]) if parts[0] == "runs" and len(parts) > 3 else None


def estimate(rows: list[dict[str, object]], batch_scale: dict[str, float]) -> list[dict[str, object]]:
    """The rows with ``estimate_mb`` (the paper's peak; = measured where nothing is extrapolated) and ``how``.

    Training rows of a study in ``batch_scale`` are scaled by its factor (paper batch / check batch); for every
    trained model without measure rows, one estimated row per measure from the study's largest measured ratio of
    measure peak to training peak.
    """
    out = []
    for row in rows:
        row = dict(row)
        key = _study_model(str(row["job"]))
        factor = batch_scale.get(key[0], 1.0) if key and row["class"] == "train" else 1.0
        row["estimate_mb"] = float(row["max_rss_mb"]) * factor  # type: ignore[arg-type]
        row["how"] = f"measured × {factor:g} (paper batch)" if factor != 1.0 else "measured"
        out.append(row)
    train = {_study_model(str(r["job"])): r for r in rows if r["class"] == "train" and _study_model(str(r["job"]))}
    ratios: dict[tuple[str, str], float] = {}
    measured: set[tuple[str, str]] = set()
    for r in rows:
        key = _study_model(str(r["job"]))
        measure = Path(str(r["job"])).name.split("_")[0]
        if key is None or measure not in MEASURES or key not in train:
            continue
        measured.add(key)
        ratio = float(r["max_rss_mb"]) / float(train[key]["max_rss_mb"])  # type: ignore[arg-type]
        ratios[(key[0], measure)] = max(ratios.get((key[0], measure), 0.0), ratio)
    for key, t in sorted(train.items(), key=lambda kv: str(kv[0])):
        if key in measured:
            continue
        for measure in MEASURES:
            ratio = ratios.get((key[0], measure))
            if ratio is None:
                continue
            run = str(Path(str(t["job"])).parent)
            out.append({"job": f"{run}/{measure} (not run)", "class": "analysis", "seconds": math.nan,
                        "max_rss_mb": math.nan, "estimate_mb": float(t["max_rss_mb"]) * ratio,  # type: ignore[arg-type]
                        "how": f"training peak × {ratio:.2f} ({key[0]} {measure}/train)"})  # fmt: skip
    return out


# A model whose training or measure needs more than this (at paper scale, before the margin) gets requests of its
# own (``resources.by_model``): 16 GB is a common GPU size, and a job above it needs a large-memory GPU anyway; the
# class request then stays what every other job of the class needs, instead of the largest model's.
OWN_REQUEST_ABOVE_MB = 16000


def _mem_mb(peak_mb: float, margin: float) -> int:
    return 1000 * math.ceil(peak_mb * margin / 1000)


def _peak(row: dict[str, object]) -> float:
    return float(row.get("estimate_mb", row["max_rss_mb"]))  # type: ignore[arg-type]


def _largest(
    rows: list[dict[str, object]], group: Callable[[dict[str, object], float], Hashable | None], margin: float
) -> dict[Hashable, dict[str, object]]:
    """Per ``group(row, peak)`` (``None``: left out): the largest peak, its job, and ``mem_mb`` = peak × margin
    rounded up to 1000 MB. Rows without a peak are left out."""
    out: dict[Hashable, dict[str, object]] = {}
    for row in rows:
        peak = _peak(row)
        key = None if math.isnan(peak) else group(row, peak)
        if key is not None and (key not in out or peak > float(out[key]["peak_mb"])):  # type: ignore[arg-type]
            out[key] = {"peak_mb": peak, "job": row["job"], "mem_mb": _mem_mb(peak, margin)}
    return out


def model_requests(
    rows: list[dict[str, object]], margin: float = 1.5, above_mb: float = OWN_REQUEST_ABOVE_MB
) -> dict[str, dict[str, dict[str, object]]]:
    """``{model: {class: {peak_mb, job, mem_mb}}}`` for every run job class in which a model needs > ``above_mb``."""

    def model_class(row: dict[str, object], peak: float) -> tuple[str, str] | None:
        key = _study_model(str(row["job"]))
        return (key[1], str(row["class"])) if key is not None and peak > above_mb else None

    out: dict[str, dict[str, dict[str, object]]] = {}
    for (model, kind), values in _largest(rows, model_class, margin).items():  # type: ignore[misc]
        out.setdefault(model, {})[kind] = values
    return out


def suggested_requests(
    rows: list[dict[str, object]], margin: float = 1.5, own: dict[str, dict[str, dict[str, object]]] | None = None
) -> dict[str, dict[str, float]]:
    """Per class: the largest peak (estimated where a row has ``estimate_mb``) of the jobs without a request of
    their own (``own``, from :func:`model_requests`), its job, and ``mem_mb`` = peak × margin rounded up to 1000 MB."""

    def own_class(row: dict[str, object], _peak_mb: float) -> str | None:
        key = _study_model(str(row["job"]))
        return None if own and key and str(row["class"]) in own.get(key[1], {}) else str(row["class"])

    return _largest(rows, own_class, margin)  # type: ignore[return-value]


def markdown(
    rows: list[dict[str, object]], margin: float, wall: float | None, batch_scale: dict[str, float] | None = None
) -> str:
    ran = len(rows)
    rows = estimate(rows, batch_scale or {})
    lines = []
    if wall is not None:
        lines += [f"wall time of the check: {wall / 60:.1f} min; {ran} jobs", ""]
    lines += ["| job | class | time (s) | peak RSS (MB) | at paper scale (MB) | how |", "|---|---|---:|---:|---:|---|"]
    for row in sorted(rows, key=lambda r: (str(r["class"]), -float(r["estimate_mb"]))):  # type: ignore[arg-type]
        lines.append(
            f"| {row['job']} | {row['class']} | {row['seconds']:.1f} | {row['max_rss_mb']:.0f} "
            f"| {row['estimate_mb']:.0f} | {row['how']} |"
        )
    own = model_requests(rows, margin)
    lines += ["", f"| class | largest peak (MB) | its job | suggested mem_mb (× {margin}) |", "|---|---:|---|---:|"]
    for kind, values in sorted(suggested_requests(rows, margin, own).items()):
        lines.append(f"| {kind} | {values['peak_mb']:.0f} | {values['job']} | {values['mem_mb']:.0f} |")
    lines += ["", f"Models above {OWN_REQUEST_ABOVE_MB} MB get their own requests (`resources.by_model`):", "",
              f"| model | class | largest peak (MB) | its job | suggested mem_mb (× {margin}) |",
              "|---|---|---:|---|---:|"]  # fmt: skip
    for model, kinds in sorted(own.items()):
        for kind, v in sorted(kinds.items()):
            lines.append(f"| {model} | {kind} | {float(v['peak_mb']):.0f} | {v['job']} | {v['mem_mb']} |")  # type: ignore[arg-type]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results_dir", type=Path)
    p.add_argument("--wall", type=float, default=None, help="the check's wall time in seconds, for the header")
    p.add_argument("--margin", type=float, default=1.5)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument(
        "--batch-scale", action="append", default=[], metavar="STUDY=FACTOR",
        help="scale a study's training peaks by paper batch / check batch (repeatable)",
    )  # fmt: skip
    args = p.parse_args(argv)
    scales = {k: float(v) for k, v in (item.split("=", 1) for item in args.batch_scale)}
    rows = collect(args.results_dir)
    if not rows:
        print(f"no benchmark files below {args.results_dir / 'benchmarks'}", file=sys.stderr)
        return 1
    text = markdown(rows, args.margin, args.wall, scales)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
