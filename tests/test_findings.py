"""The findings publisher on a tiny synthetic results tree (no real run)."""

from __future__ import annotations

import pandas as pd
import pytest

from equidyn import findings
from equidyn.cli import main

LINEAGE = {"config_sha": "cfg123", "git_rev": "abc123", "data_sha": "d"}


def _claim(claim, verdict, n, needed, **kw):
    return {
        "claim": claim,
        "source": "BLOG",
        "quantity": "test RMSE",
        "comparison": "rsteer α=0.01 vs e2cnn",
        "checkpoint": "best",
        "effect_kind": "log_ratio",
        "claimed": "effect < 0",
        "effect": -0.2,
        "ci_low": -0.3,
        "ci_high": -0.1,
        "n_seeds": n,
        "verdict": verdict,
        "seeds_needed": needed,
        **LINEAGE,
        **kw,
    }


@pytest.fixture
def results(tmp_path):
    run = tmp_path / "results" / "laptop"
    (run / "tables").mkdir(parents=True)
    (run / "figures").mkdir()
    pd.DataFrame(
        [
            _claim("relaxed beats strict", "supported", 5, float("nan")),
            _claim("relaxed is flatter", "not resolved", 5, 12.0, ci_high=0.05),
            _claim("tracks data EE", "not resolved", 2, float("nan")),
        ]
    ).to_csv(run / "tables" / "claims.csv", index=False)
    summary = {"model": ["e2cnn", "rsteer"], "alpha": [0, 0.01], "level": [0, 0], "checkpoint": ["best", "best"]}
    summary |= {"test_rmse_skill": [0.4, -0.1], "test_rmse_skill_ci_low": [0.3, -0.2], **LINEAGE}
    summary |= {"test_rmse_ci_low": [0.8, 1.2], "test_rmse_ci_high": [0.9, 1.4], "linear_extrapolation_test_rmse": 1.0}
    pd.DataFrame(summary).to_csv(run / "tables" / "levels_summary.csv", index=False)
    conv = {"study": ["levels"] * 2, "model": ["e2cnn", "rsteer"], "rel_change_last20": [0.01, 0.2]}
    pd.DataFrame({**conv, "flattened": [True, False], **LINEAGE}).to_csv(run / "tables" / "convergence.csv")
    (run / "figures" / "claims.png").write_bytes(b"\x89PNG fake")
    (run / "figures" / "claims.pdf").write_bytes(b"%PDF fake")
    return run


def test_publish_writes_page_tables_and_figures(results, tmp_path):
    docs = tmp_path / "docs"
    assert main(["publish-findings", "--results", str(results), "--docs", str(docs)]) == 0
    page = (docs / "findings.md").read_text()
    assert pd.read_csv(docs / "findings" / "claims.csv").shape[0] == 3
    assert (docs / "findings" / "levels_summary.csv").exists() and (docs / "findings" / "convergence.csv").exists()
    assert (docs / "img" / "findings" / "claims.png").exists() and not (
        docs / "img" / "findings" / "claims.pdf"
    ).exists()
    # one paragraph per claim, with CI, verdict and seeds needed for the unresolved one
    assert page.count("*Verdict:*") == 3
    assert "95 % CI [-0.3, -0.1]" in page and "**supported**" in page
    assert "about 12 seeds would resolve it" in page
    assert "too few seeds to estimate" in page and "Only 2 seeds" in page
    # lineage of the run, of each table and under each figure
    assert "commit abc123" in page and "config cfg123" in page
    assert "![claims](img/findings/claims.png)" in page
    # baselines and convergence summarised from the tables
    assert "1 of 2 model rows beat the baseline" in page
    assert "levels: 1 of 2 runs flattened" in page
    assert "not in this run: data_equivariance" in page
    assert "linear extrapolation" in page and "1 of 2 model rows beat it with 95 % confidence, 1 are worse" in page


def test_the_authors_reading_is_kept_between_publications(results, tmp_path):
    docs = tmp_path / "docs"
    (docs / "findings").mkdir(parents=True)
    (docs / "findings" / "answer.md").write_text("## The answer\n\nRelaxed is not flatter here.\n")
    for _ in range(2):
        findings.publish(results, docs)
        page = (docs / "findings.md").read_text()
        assert page.count("Relaxed is not flatter here.") == 1
        assert page.index("## The answer") < page.index("## Claims")


def test_publish_without_claims_names_the_missing_table(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"claims\.csv"):
        findings.publish(tmp_path / "results" / "empty", tmp_path / "docs")


def test_primary_and_secondary_claims_are_shown_apart_with_holm_verdicts(results, tmp_path):
    new = {"ci_method": "welch_log_ratio", "paired": False, "p_value": 0.01, "seeds_needed_low": 7.0}
    rows = [
        _claim("relaxed beats strict", "supported", 5, 6.0, role="primary", p_holm=0.03, verdict_holm="supported"),
        _claim("relaxed is flatter", "supported", 5, 9.0, role="primary", p_holm=0.06, verdict_holm="not resolved"),
        _claim("trace is lower", "not resolved", 5, 30.0, role="secondary", p_holm=None, verdict_holm=None),
        _claim("escnn is exact", "supported", 5, None, role="check", p_holm=None, verdict_holm=None),
    ]
    df = pd.DataFrame([{**r, **new, "seeds_needed_high": 90.0} for r in rows])
    df = df.rename(columns={"seeds_needed": "seeds_needed_80pct_power"})
    df.to_csv(results / "tables" / "claims.csv", index=False)
    page = (findings.publish(results, tmp_path / "docs")).read_text()
    primary, secondary, check = (page.index(f"### {t}") for t in ("Primary", "Secondary", "Checks"))
    assert primary < page.index("relaxed beats strict") < secondary < page.index("trace is lower") < check
    assert "Holm-adjusted verdicts: supported 1, not resolved 1." in page
    assert "Holm-adjusted over the primary claims: **not resolved** (p 0.06)" in page
    assert "about 9 seeds per arm give 80 % power (7–90" in page  # supported alone, withdrawn by Holm
    assert "Welch t on logs, unpaired" in page and "about 30 seeds per arm give 80 % power" in page


def test_a_second_study_is_published_beside_the_first_without_touching_it(results, tmp_path):
    docs = tmp_path / "docs"
    (docs / "findings" / "heldout").mkdir(parents=True)
    (docs / "findings" / "heldout" / "answer.md").write_text("## Answer\n\nThe held-out reading.\n")
    (docs / "findings.md").write_text("the published-protocol page\n")
    assert main(["publish-findings", "--results", str(results), "--docs", str(docs), "--page", "heldout"]) == 0
    assert (docs / "findings.md").read_text() == "the published-protocol page\n"
    page = (docs / "findings" / "heldout.md").read_text()
    assert "The held-out reading." in page
    assert "[heldout/claims.csv](heldout/claims.csv)" in page
    assert "![claims](../img/findings/heldout/claims.png)" in page
    assert (docs / "img" / "findings" / "heldout" / "claims.png").exists()
    assert (docs / "findings" / "heldout" / "levels_summary.csv").exists()


def test_the_main_claims_table_holds_both_protocols_when_asked(results, tmp_path):
    """Issue 20: one claims.csv with the published-protocol rows and the generalisation rows."""
    docs = tmp_path / "docs"
    (docs / "findings" / "heldout").mkdir(parents=True)
    heldout = pd.DataFrame([_claim("tied beats e2cnn", "supported", 10, float("nan"), protocol="generalisation")])
    heldout.to_csv(docs / "findings" / "heldout" / "claims.csv", index=False)
    args = ["publish-findings", "--results", str(results), "--docs", str(docs), "--include-page", "heldout"]
    assert main(args) == 0
    table = pd.read_csv(docs / "findings" / "claims.csv")
    assert list(table.run) == ["laptop"] * 3 + ["heldout"]
    assert table.protocol.iloc[-1] == "generalisation"
    assert "[heldout](findings/heldout.md)" in (docs / "findings.md").read_text()
    with pytest.raises(FileNotFoundError, match="publish the 'nope' page first"):
        findings.publish(results, docs, include_page=["nope"])


def test_an_exponax_run_publishes_its_tables_and_says_which_arms_beat_both_trivial_forecasts(results, tmp_path):
    """``publish-findings --page exponax`` (issue 24): the study's summary, data EE and runs tables are copied and
    the page counts the (arm, flow) rows that beat persistence and the linear extrapolation."""
    tables = results / "tables"
    rows = {
        "model": ["e2cnn", "rsteer", "rsteer"],
        "alpha": [0.0, 0.0, 0.0],
        "flow": ["decaying", "decaying", "kolmogorov"],
    }
    rows |= {"checkpoint": ["best"] * 3, "beats_trivial_95": [True, True, False]}
    rows |= {"test_rmse_skill_vs_linear_extrapolation": [0.5, 0.4, -0.1], **LINEAGE}
    pd.DataFrame(rows).to_csv(tables / "exponax_summary.csv", index=False)
    pd.DataFrame({"flow": ["decaying"], "data_ee_d4_rel": [1e-15], **LINEAGE}).to_csv(
        tables / "exponax_data_equivariance.csv", index=False
    )
    pd.DataFrame({"model": ["e2cnn"], "flow": ["decaying"], **LINEAGE}).to_csv(tables / "exponax.csv", index=False)
    docs = tmp_path / "docs"
    assert main(["publish-findings", "--results", str(results), "--docs", str(docs), "--page", "exponax"]) == 0
    page = (docs / "findings" / "exponax.md").read_text()
    for name in ("exponax_summary", "exponax_data_equivariance", "exponax", "claims"):
        assert (docs / "findings" / "exponax" / f"{name}.csv").exists(), name
    assert "2 of 3 (arm, flow) rows beat both with 95 % confidence" in page
    assert "lowest skill over the linear extrapolation -0.1 (rsteer α=0.0, kolmogorov)" in page
