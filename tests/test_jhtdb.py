"""The JHTDB client path, end to end through givernylocal, against a loopback server speaking its JSON.

The server serves a metadata JSON (passed as ``json_url``) and answers ``/turbulence-svc/cutout/api/local``
with the ``{coords, data_vars}`` JSON that givernylocal's ``getCutout`` parses. Its field encodes the grid
index of each point in its own component (u_x ~ x index, u_y ~ y index, u_z ~ z index) plus the time
index, so the tests can check that axes, components and times land where the store layout says. A script
of actions per request injects 5xx answers, a timeout and token refusals.
"""

from __future__ import annotations

import datetime
import email.utils
import json
import logging
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import numpy as np
import pytest

from equidyn.data.jhtdb import (
    CropPlan,
    JhtdbAuthError,
    JhtdbNetworkError,
    JhtdbRequestError,
    JhtdbSettings,
    download_jhtdb,
    plan_crops,
    plan_requests,
    redact,
)
from equidyn.store import open_store

TOKEN = "personal-token-0123456789abcdef"
TESTING_TOKEN = "edu.jhu.pha.turbulence.testing-201406"
N_GRID = 1024
N_FRAMES = 5024
DX = 2 * np.pi / N_GRID


def expected_velocity(ix: np.ndarray, iy: np.ndarray, iz: np.ndarray, t: int) -> np.ndarray:
    """The loopback field at 1-based indices: (u_x, u_y, u_z) = (ix, iy, iz)/1024 + (0, 1, 2) + t/8192."""
    return np.stack([ix / 1024 + 0 + t / 8192, iy / 1024 + 1 + t / 8192, iz / 1024 + 2 + t / 8192], axis=-1)


def metadata_json() -> dict:
    """A minimal metadata file that passes givernylocal's pydantic schema, with the real dataset's grid."""
    lims = {"lower": "0", "upper": "2pi", "n": N_GRID, "isPeriodic": True, "spacing": DX}
    return {
        "name": "JHTDB",
        "description": "loopback test",
        "pickled_metadata_filepath": "/nowhere",
        "variables": [
            {"code": "velocity", "name": "Velocity", "component_codes": ["ux", "uy", "uz"], "cardinality": 3}
        ],
        "spatial_operators": [{"code": "field", "name": "Field"}],
        "spatial_methods": [{"code": "none", "name": "none", "bucketIndices": [0, 1]}],
        "temporal_methods": [{"code": "none", "name": "none"}],
        "giverny_constants": {
            "maximum_processes": 1,
            "missing_value_placeholder": -999.9,
            "bytes_per_datapoint": 4,
            "max_cutout_size": 16.0,
            "max_local_cutout_size": 3072.0,
            "max_data_points": 2000000,
            "max_num_chunks": 262144,
            "decimals": 7,
            "pyJHTDB_testing_token": TESTING_TOKEN,
            "turbulence_email_address": "nobody@example.org",
        },
        "datasets": [
            {
                "code": "isotropic1024coarse",
                "name": "Isotropic 1024 Coarse",
                "storage": {"filepath": "/nowhere", "chunks": [64, 64, 64]},
                "simulation": {
                    "tlims": {
                        "lower": "0",
                        "upper": "10.056",
                        "n": N_FRAMES,
                        "isPeriodic": False,
                        "isDiscrete": False,
                        "timeIndexShift": {"getcutout": -1, "getdata": 0},
                    },
                    "xlims": lims,
                    "ylims": lims,
                    "zlims": lims,
                },
                "physicalVariables": [
                    {
                        "code": "velocity",
                        "name": "Velocity",
                        "isPersistent": True,
                        "offsets": [{"code": "velocity", "coordinate": [0, 0, 0]}],
                        "spatialOperatorMethods": [{"operator": "field", "methods": ["none"]}],
                        "temporalMethods": ["none"],
                    }
                ],
            }
        ],
    }


class FakeJhtdb:
    """State of the loopback service: the script of actions, the log of cut-out requests, the valid token."""

    def __init__(self) -> None:
        self.script: list[str] = []
        self.cutouts: list[dict[str, int]] = []
        self.metadata_hits = 0
        self.valid_token = TOKEN
        self.lock = threading.Lock()
        # A "timeout" answer holds the request until the client has given up (or the test ends), rather than
        # sleeping a fixed time: no wall-clock race between the client's timeout and the server on a slow machine.
        self.release = threading.Event()
        self.server: ThreadingHTTPServer | None = None

    @property
    def base(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def cutout_body(self, q: dict[str, int]) -> bytes:
        xs = np.arange(q["xs"], q["xe"] + 1)
        ys = np.arange(q["ys"], q["ye"] + 1)
        zs = np.arange(q["zs"], q["ze"] + 1)
        iz, iy, ix = np.meshgrid(zs, ys, xs, indexing="ij")
        data_vars = {}
        for t in range(q["ts"], q["te"] + 1, q["stridet"]):
            data = expected_velocity(ix, iy, iz, t).astype(np.float32)
            data_vars[f"velocity_{t:04d}"] = {
                "dims": ["zcoor", "ycoor", "xcoor", "values"],
                "data": data.tolist(),
            }
        coords = {
            name: {"dims": [name], "data": ((idx - 1) * DX).round(7).tolist()}
            for name, idx in (("zcoor", zs), ("ycoor", ys), ("xcoor", xs))
        }
        return json.dumps({"coords": coords, "data_vars": data_vars}).encode()


def make_handler(state: FakeJhtdb) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:  # keep pytest output clean
            pass

        def send(self, code: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            try:
                self.send_response(code)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test)

        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path == "/metadata.json":
                with state.lock:
                    state.metadata_hits += 1
                self.send(200, json.dumps(metadata_json()).encode())
                return
            if url.path != "/turbulence-svc/cutout/api/local":
                self.send(404, b'{"description": "no such endpoint"}')
                return
            raw = {k: v[0] for k, v in parse_qs(url.query).items()}
            q = {k: int(v) for k, v in raw.items() if k not in ("token", "function", "dataset")}
            with state.lock:
                state.cutouts.append(q)
                action = state.script.pop(0) if state.script else "ok"
            if raw.get("token") != state.valid_token:
                self.send(403, json.dumps({"description": ["invalid authorization token"]}).encode())
            elif action == "500":
                self.send(500, b'{"description": "internal server error"}')
            elif action == "503":
                self.send(503, b"<html>service unavailable</html>")
            elif action == "timeout":
                state.release.wait(timeout=60)
                self.send(200, state.cutout_body(q))
            elif action.startswith("429:"):  # rate limited: "429:<Retry-After value>"
                self.send(429, b'{"description": "too many requests"}', {"Retry-After": action[4:]})
            elif action == "400":
                self.send(400, b'{"description": ["bad request: xs out of range"]}')
            else:
                self.send(200, state.cutout_body(q))

    return Handler


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch):
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    state = FakeJhtdb()
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(state))
    server.daemon_threads = True
    state.server = server
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    state.release.set()
    server.shutdown()
    server.server_close()


def settings_for(state: FakeJhtdb, **kw: object) -> JhtdbSettings:
    base = {
        "n_samples": 3,
        "crop": 8,
        "n_times": 4,
        "time_stride": 2,
        "seed": 7,
        "json_url": f"{state.base}/metadata.json",
        "service_url": f"{state.base}/turbulence-svc",
        # generous for a loopback answer on a loaded machine; the "timeout" action never answers in time
        "timeout_s": 3.0,
        "max_retries": 3,
        "backoff_s": 0.01,
        "backoff_max_s": 0.05,
    }
    base.update(kw)
    return JhtdbSettings(**base)  # type: ignore[arg-type]


def env(token: str = TOKEN) -> dict[str, str]:
    return {"JHTDB_TOKEN": token}


def all_bytes_under(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file())


def test_download_writes_the_shared_layout_with_correct_axes_components_and_times(service, tmp_path):
    s = settings_for(service)
    out = tmp_path / "jhtdb.zarr"
    sha = download_jhtdb(s, out, environ=env())
    ds = open_store(out)
    assert ds.attrs["content_sha256"] == sha
    assert ds["velocity"].dims == ("sample", "time", "component", "z", "y", "x")
    assert ds["velocity"].shape == (3, 4, 3, 8, 8, 8) and ds["velocity"].dtype == np.float32
    assert list(ds["component"].values) == ["x", "y", "z"]
    assert ds.attrs["source"] == "jhtdb"
    origins = json.loads(ds.attrs["crop_origins"])
    times = json.loads(ds.attrs["time_indices"])
    k = np.arange(8)
    for si in range(3):
        ox, oy, oz = origins[si]
        iz, iy, ix = np.meshgrid(oz + k, oy + k, ox + k, indexing="ij")
        assert times[si] == [times[si][0] + 2 * j for j in range(4)]
        for j, t in enumerate(times[si]):
            want = np.moveaxis(expected_velocity(ix, iy, iz, t), -1, 0).astype(np.float32)
            np.testing.assert_array_equal(ds["velocity"].values[si, j], want)
        assert ds["t0"].values[si] == pytest.approx((times[si][0] - 1) * 0.002)
        assert ds["x0"].values[si] == pytest.approx((ox - 1) * DX, abs=1e-6)
        assert ds["z0"].values[si] == pytest.approx((oz - 1) * DX, abs=1e-6)
    np.testing.assert_allclose(ds["time"].values, np.arange(4) * 2 * 0.002)
    np.testing.assert_allclose(ds["x"].values, np.arange(8) * DX)
    # one request per sample (8³ x 4 times fits the client's limits), the work directory is gone, no token
    assert len(service.cutouts) == 3
    assert not (tmp_path / "jhtdb.zarr.partial").exists()
    assert TOKEN.encode() not in all_bytes_under(tmp_path)
    assert "JHTDB_TOKEN" in ds.attrs["settings"] and TOKEN not in ds.attrs["settings"]


def test_5xx_and_timeout_are_retried_and_logs_never_show_the_token(service, tmp_path, caplog):
    service.script = ["500", "timeout", "503"]  # the first sample succeeds on its 4th attempt
    s = settings_for(service, n_samples=1)
    with caplog.at_level(logging.DEBUG):
        download_jhtdb(s, tmp_path / "j.zarr", environ=env())
    assert len(service.cutouts) == 4
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("HTTP 500" in w for w in warnings)
    assert any("Timeout" in w for w in warnings)
    assert any("HTTP 503" in w for w in warnings)
    assert all(TOKEN not in r.getMessage() for r in caplog.records)
    assert open_store(tmp_path / "j.zarr")["velocity"].shape[0] == 1


def test_a_429_waits_as_long_as_its_retry_after_asks(service, tmp_path, caplog, monkeypatch):
    """Rate limited with ``Retry-After: 7`` (seconds) and then with an HTTP date 60 s ahead: the next attempt
    waits that long, not the 0.01 s back-off; an unreadable header falls back to the back-off. (The sleep is
    injected: the test records the waits and sleeps none; the clock an HTTP date is read against is frozen, so
    the wait is exact however slow the machine.)"""
    now = 1_800_000_000.0
    monkeypatch.setattr(time, "time", lambda: now)
    when = email.utils.format_datetime(datetime.datetime.fromtimestamp(now + 60, datetime.UTC), True)
    service.script = ["429:7", f"429:{when}", "429:soon"]
    waits: list[float] = []
    with caplog.at_level(logging.WARNING):
        download_jhtdb(settings_for(service, n_samples=1), tmp_path / "j.zarr", environ=env(), sleep=waits.append)
    assert len(service.cutouts) == 4 and len(waits) == 3
    assert waits[0] == 7.0
    assert waits[1] == 60.0
    assert 0.04 <= waits[2] <= 0.05 + 0.01  # third back-off (0.01 · 2², capped at 0.05) plus jitter
    assert any("unreadable Retry-After" in r.getMessage() for r in caplog.records)
    assert open_store(tmp_path / "j.zarr")["velocity"].shape[0] == 1


def test_a_retry_after_beyond_what_a_job_waits_ends_the_download_with_a_clear_error(service, tmp_path):
    service.script = ["429:3600"]
    waits: list[float] = []
    with pytest.raises(JhtdbNetworkError, match=r"asks to wait 3600 s.*rerun later"):
        download_jhtdb(settings_for(service), tmp_path / "j.zarr", environ=env(), sleep=waits.append)
    assert waits == [] and len(service.cutouts) == 1


def test_back_off_is_exponential_with_jitter(service, tmp_path):
    """Waits of 1, 2, 2 s (doubling from ``backoff_s``, capped at ``backoff_max_s``), each plus up to
    ``backoff_s`` of random jitter, which is there also at the cap."""
    service.script = ["500", "503", "500"]
    waits: list[float] = []
    random.seed(3)
    s = settings_for(service, n_samples=1, backoff_s=1.0, backoff_max_s=2.0)
    download_jhtdb(s, tmp_path / "j.zarr", environ=env(), sleep=waits.append)
    assert len(waits) == 3
    for wait, base in zip(waits, (1.0, 2.0, 2.0), strict=True):
        assert base <= wait <= base + 1.0
    assert len({round(w % 1, 6) for w in waits}) == 3 and all(w % 1 > 0 for w in waits)  # jittered, not fixed


def test_refused_token_gives_a_clear_error_without_retrying_or_leaking(service, tmp_path):
    s = settings_for(service)
    wrong = "wrong-token-fedcba9876543210"
    with pytest.raises(JhtdbAuthError) as err:
        download_jhtdb(s, tmp_path / "j.zarr", environ=env(wrong))
    msg = str(err.value)
    assert "refused the token" in msg and "JHTDB_TOKEN" in msg and "invalid authorization token" in msg
    assert wrong not in msg and wrong not in repr(err.value.__cause__)
    assert len(service.cutouts) == 1  # a refusal is not retried
    assert not (tmp_path / "j.zarr").exists()


def test_missing_token_fails_before_any_network_access(service, tmp_path, monkeypatch):
    monkeypatch.delenv("MY_JHTDB", raising=False)
    s = settings_for(service, token_env="MY_JHTDB")
    with pytest.raises(JhtdbAuthError, match="MY_JHTDB"):
        download_jhtdb(s, tmp_path / "j.zarr")
    monkeypatch.setenv("MY_JHTDB", "   ")
    with pytest.raises(JhtdbAuthError, match="token missing"):
        download_jhtdb(s, tmp_path / "j.zarr")
    assert service.metadata_hits == 0 and service.cutouts == []


def test_testing_token_is_refused_for_crops_beyond_its_limit(service, tmp_path):
    s = settings_for(service, crop=32, n_samples=1)
    with pytest.raises(JhtdbAuthError, match="testing token"):
        download_jhtdb(s, tmp_path / "j.zarr", environ=env(TESTING_TOKEN))
    assert service.cutouts == []


def test_other_client_errors_are_not_retried(service, tmp_path):
    service.script = ["400"]
    with pytest.raises(JhtdbRequestError, match=r"HTTP 400.*xs out of range"):
        download_jhtdb(settings_for(service), tmp_path / "j.zarr", environ=env())
    assert len(service.cutouts) == 1


def test_interrupted_download_resumes_where_it_stopped(service, tmp_path):
    s = settings_for(service, max_retries=1)
    out = tmp_path / "j.zarr"
    # sample 0 succeeds, then sample 1 fails on both attempts: the download stops with a network error
    service.script = ["ok", "500", "500"]
    with pytest.raises(JhtdbNetworkError, match="after 2 attempts"):
        download_jhtdb(s, out, environ=env())
    assert not out.exists(), "a partial download must never appear under the store's name"
    work = tmp_path / "j.zarr.partial"
    assert sorted(p.name for p in work.glob("sample_*.npz")) == ["sample_00000.npz"]
    first_requests = len(service.cutouts)
    assert first_requests == 3

    sha = download_jhtdb(s, out, environ=env())
    resumed = service.cutouts[first_requests:]
    assert len(resumed) == 2, "only samples 1 and 2 are fetched again"
    plans = plan_crops(s, (N_GRID, N_GRID, N_GRID), N_FRAMES)
    assert [r["xs"] for r in resumed] == [plans[1].origin[0], plans[2].origin[0]]
    assert not work.exists()

    fresh = download_jhtdb(s, tmp_path / "fresh.zarr", environ=env())
    assert fresh == sha, "a resumed download equals an uninterrupted one"


def test_damaged_partial_sample_is_downloaded_again(service, tmp_path):
    s = settings_for(service, n_samples=2, max_retries=0)
    out = tmp_path / "j.zarr"
    service.script = ["ok", "500"]
    with pytest.raises(JhtdbNetworkError):
        download_jhtdb(s, out, environ=env())
    (tmp_path / "j.zarr.partial" / "sample_00000.npz").write_bytes(b"truncated")
    n0 = len(service.cutouts)
    download_jhtdb(s, out, environ=env())
    assert len(service.cutouts) - n0 == 2


def test_resume_with_different_settings_is_refused(service, tmp_path):
    out = tmp_path / "j.zarr"
    service.script = ["ok", "500"]
    with pytest.raises(JhtdbNetworkError):
        download_jhtdb(settings_for(service, max_retries=0), out, environ=env())
    with pytest.raises(JhtdbRequestError, match="different settings"):
        download_jhtdb(settings_for(service, seed=8), out, environ=env())


def test_plan_is_seeded_inside_the_domain_and_requests_tile_the_crop():
    s = JhtdbSettings(n_samples=20, crop=64, n_times=4, time_stride=3, seed=1)
    plans = plan_crops(s, (1024, 1024, 1024), 5024)
    assert plans == plan_crops(s, (1024, 1024, 1024), 5024)
    assert plans != plan_crops(JhtdbSettings(n_samples=20, seed=2), (1024, 1024, 1024), 5024)
    for p in plans:
        assert all(o >= 1 and o + 63 <= 1024 for o in p.origin)
        assert p.time_indices[0] >= 1 and p.time_indices[-1] <= 5024
        assert np.all(np.diff(p.time_indices) == 3)
    plan = CropPlan(0, (5, 6, 7), (10, 11, 12, 13))
    # a whole 64³ x 4 sample fits the client's 128³-point guidance: one request
    assert len(plan_requests(plan, 64, 128**3)) == 1
    # a tight limit: one time per request, and z slabs of 64*64*10 points
    reqs = plan_requests(plan, 64, 64 * 64 * 10)
    covered = np.zeros((4, 64), dtype=int)
    for r in reqs:
        assert (r.x, r.y) == ((5, 68), (6, 69))
        assert r.z == (7 + r.z_slice[0], 7 + r.z_slice[1] - 1) and r.t[0] == r.t[1]
        assert (r.z[1] - r.z[0] + 1) * 64 * 64 <= 64 * 64 * 10
        covered[r.time_slice[0] : r.time_slice[1], r.z_slice[0] : r.z_slice[1]] += 1
    assert (covered == 1).all()
    reqs = plan_requests(plan, 64, 2 * 64**3)
    assert [r.time_slice for r in reqs] == [(0, 2), (2, 4)] and reqs[1].t == (12, 13)


def test_settings_reject_unknown_keys_and_bad_values():
    with pytest.raises(ValueError, match="n_sample"):
        JhtdbSettings.from_dict({"n_sample": 3})
    with pytest.raises(ValueError, match="token_env"):
        JhtdbSettings.from_dict({"token_env": "not a name"})
    assert JhtdbSettings.from_dict({"crop": 32}).crop == 32


def test_redact_removes_token_values_from_urls():
    text = "GET http://h/x?token=abc123&function=velocity failed; abc123 again"
    clean = redact(text, "abc123")
    assert "abc123" not in clean and "function=velocity" in clean
