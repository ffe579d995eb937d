"""The paper-scale check's JHTDB path: the superres data job at paper crop (64³, 4 times) against the loopback
JHTDB service of tests/test_jhtdb.py, timed like a Snakemake job (a benchmark .tsv with ``s`` and ``max_rss``).

    python scripts/paper_check_jhtdb.py RESULTS_DIR      (scripts/paper_check.sh calls it)

Writes RESULTS_DIR/data/superres/jhtdb.zarr and RESULTS_DIR/benchmarks/superres/data_jhtdb.tsv. The workflow itself
runs the offline source (the paper default); this runs the same ``superres-data`` command with ``source: jhtdb``.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from test_jhtdb import TOKEN, FakeJhtdb, make_handler  # noqa: E402


def main() -> int:
    results = Path(sys.argv[1])
    config = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())["superres"]["data"]
    check = yaml.safe_load((ROOT / "config" / "paper_check.yaml").read_text())["superres"]["data"]
    state = FakeJhtdb()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    server.daemon_threads = True
    state.server = server
    threading.Thread(target=server.serve_forever, daemon=True).start()
    n = check["n_train"] + check["n_val"] + check["n_test"]
    jhtdb = {
        **config["jhtdb"],  # paper crop and times
        "n_samples": n,
        "json_url": f"{state.base}/metadata.json",
        "service_url": f"{state.base}/turbulence-svc",
    }
    data = {**config, **{k: check[k] for k in ("n_train", "n_val", "n_test")}, "source": "jhtdb", "jhtdb": jhtdb}
    out = results / "data" / "superres" / "jhtdb.zarr"
    out.parent.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "JHTDB_TOKEN": TOKEN, "NO_PROXY": "127.0.0.1,localhost", "PYTHONPATH": str(ROOT / "src")}
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        env.pop(var, None)
    cmd = [sys.executable, "-m", "equidyn.cli", "superres-data", "--settings", json.dumps({"data": data})]
    cmd += ["--out", str(out), "--threads", "2"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env)
    seconds = time.perf_counter() - t0
    server.shutdown()
    rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # KiB on Linux
    bench = results / "benchmarks" / "superres" / "data_jhtdb.tsv"
    bench.parent.mkdir(parents=True, exist_ok=True)
    bench.write_text(f"s\th:m:s\tmax_rss\n{seconds:.4f}\t-\t{rss_mb:.2f}\n")
    print(
        f"JHTDB path: exit {proc.returncode}, {seconds:.1f} s, peak RSS {rss_mb:.0f} MB, {len(state.cutouts)} cut-outs"
    )
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
