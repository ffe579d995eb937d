"""JHTDB ``isotropic1024coarse`` crops through ``givernylocal``, with retries, resume and a safe token.

The published super-resolution data ([W24, BLOG]) were most likely random 64³ crops of JHTDB's forced
isotropic turbulence at native resolution. :func:`download_jhtdb` fetches such crops: ``n_samples`` of
them, each ``n_times`` snapshots ``time_stride`` stored frames apart, at positions and times drawn from a
fixed seed, and writes them in the store layout shared with the offline solver
(``sample, time, component, z, y, x``).

It wraps givernylocal 3.6.4 rather than forking it. ``turb_dataset`` and ``getCutout`` look up the module name
``requests`` at call time, so for the duration of a download that name is pointed at a small transport
(:class:`RetryingTransport`) that

* routes the service host to ``settings.service_url`` (a mirror, or a loopback test server),
* applies ``settings.timeout_s`` instead of the package's fixed 1000 s,
* retries timeouts, connection errors, HTTP 408, 429 and 5xx (tenacity) with exponential back-off and jitter,
  waiting at least as long as a ``Retry-After`` header asks (up to ``RETRY_AFTER_MAX_S``),
* turns a refused token (401/403, or a 4xx whose description talks about the token) into
  :class:`JhtdbAuthError`, and every other refusal into :class:`JhtdbRequestError` with the server's text,
* never lets the token reach a message, a log record or the store: it is read from the environment variable
  named in the settings, and redacted from every text this module emits.

Resume: each finished sample is written atomically as ``<out>.partial/sample_NNNNN.npz`` together with the
crop plan (``plan.json``); a rerun with the same settings downloads only what is missing. The final store is
assembled and written atomically (:func:`equidyn.store.write_store`) only when every sample is present, so a
downstream rule never sees a partial store; the work directory is removed afterwards.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import random
import re
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import requests
import tenacity
import xarray as xr
from urllib3.exceptions import InvalidHeader
from urllib3.util.retry import Retry

from ..atomic import atomic_path, write_json
from ..settings import settings_from_dict
from ..store import write_store
from .turbulence import COMPONENTS

log = logging.getLogger(__name__)

#: The service host that givernylocal 3.6.4 hard-codes in its request URLs.
DEFAULT_SERVICE_URL = "https://web.idies.jhu.edu/turbulence-svc"
#: The metadata JSON givernylocal 3.6.4 downloads when a ``turb_dataset`` is constructed.
DEFAULT_JSON_URL = (
    "https://raw.githubusercontent.com/sciserver/giverny/refs/heads/main/metadata/configs/jhtdb_config.json"
)
#: Points above which givernylocal warns that a single cut-out request may fail (its own guidance).
CLIENT_POINTS_LIMIT = 128**3
#: HTTP statuses that are worth retrying: rate limiting and server-side failures.
RETRY_STATUSES = frozenset({408, 429, *range(500, 600)})
#: The longest ``Retry-After`` a download waits for; a longer one ends the job (rerun later: it resumes).
RETRY_AFTER_MAX_S = 900.0


class JhtdbError(RuntimeError):
    """A JHTDB download failed; the message says why and never contains the token."""


class JhtdbAuthError(JhtdbError):
    """The token is missing, too weak for the request, or refused by the service."""


class JhtdbNetworkError(JhtdbError):
    """The service could not be reached or kept failing after all retries."""


class JhtdbRequestError(JhtdbError):
    """The service refused a request for a reason other than the token, or returned unusable data."""


@dataclass(frozen=True)
class JhtdbSettings:
    """What to download and how (config section ``superres.data.jhtdb``).

    ``snapshot_dt`` is the physical time between stored frames of ``isotropic1024coarse`` (index i ↔
    t = (i − 1)·0.002); ``time_stride`` frames separate consecutive snapshots of a sample.
    """

    dataset: str = "isotropic1024coarse"
    variable: str = "velocity"
    n_samples: int = 50
    crop: int = 64
    n_times: int = 4
    time_stride: int = 1
    seed: int = 0
    token_env: str = "JHTDB_TOKEN"
    snapshot_dt: float = 0.002
    json_url: str = DEFAULT_JSON_URL
    service_url: str = DEFAULT_SERVICE_URL
    timeout_s: float = 300.0
    max_retries: int = 6
    backoff_s: float = 2.0
    backoff_max_s: float = 120.0
    max_points_per_request: int = CLIENT_POINTS_LIMIT

    def __post_init__(self) -> None:
        for name in ("n_samples", "crop", "n_times", "time_stride", "max_points_per_request"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"jhtdb: {name} must be >= 1, got {getattr(self, name)}")
        if self.max_retries < 0:
            raise ValueError(f"jhtdb: max_retries must be >= 0, got {self.max_retries}")
        for name in ("timeout_s", "snapshot_dt"):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"jhtdb: {name} must be > 0, got {getattr(self, name)}")
        if not self.token_env or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.token_env):
            raise ValueError(f"jhtdb: token_env must name an environment variable, got {self.token_env!r}")
        if self.variable != "velocity":
            raise ValueError(f"jhtdb: only 'velocity' is supported, got {self.variable!r}")

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> JhtdbSettings:
        return settings_from_dict(cls, d, "superres.data.jhtdb")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def plan_fingerprint(self) -> dict[str, Any]:
        """The settings that decide *what* is downloaded (not how): a resumed download must match them."""
        keys = ("dataset", "variable", "n_samples", "crop", "n_times", "time_stride", "seed", "snapshot_dt")
        return {k: getattr(self, k) for k in keys}


# -- token handling ---------------------------------------------------------------------------------------
def read_token(settings: JhtdbSettings, environ: dict[str, str] | None = None) -> str:
    """The personal token from the environment variable ``settings.token_env`` (never a file or config)."""
    env = os.environ if environ is None else environ
    token = env.get(settings.token_env, "").strip()
    if not token:
        raise JhtdbAuthError(
            f"JHTDB token missing: set the environment variable {settings.token_env} to your personal JHTDB "
            "token (request one from the JHTDB team: https://turbulence.idies.jhu.edu), or use the offline "
            "source (superres.data.source: offline)"
        )
    return token


def redact(text: str, token: str | None) -> str:
    """Remove the token from ``text``: literally, and from any ``token=...`` URL parameter."""
    if token:
        text = text.replace(token, "<token>")
    return re.sub(r"(token=)[^&\s'\"]+", r"\1<token>", text)


class _RedactFilter(logging.Filter):
    """Scrubs the token from log records (urllib3 logs full request URLs at DEBUG level)."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self.token = token

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        clean = redact(msg, self.token)
        if clean != msg:
            record.msg, record.args = clean, ()
        return True


@contextlib.contextmanager
def _redacted_logs(token: str) -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in ("urllib3", "urllib3.connectionpool", "requests", __name__)]
    filt = _RedactFilter(token)
    for lg in loggers:
        lg.addFilter(filt)
    try:
        yield
    finally:
        for lg in loggers:
            lg.removeFilter(filt)


# -- transport --------------------------------------------------------------------------------------------
class RetryingTransport:
    """Stands in for the ``requests`` module inside givernylocal: routing, timeout, retries, clear errors."""

    exceptions = requests.exceptions

    def __init__(
        self,
        settings: JhtdbSettings,
        token: str,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.settings = settings
        self.token = token
        self.sleep = sleep
        self.session = requests.Session()
        self.attempts = 0

    def __getattr__(self, name: str) -> Any:
        # whatever givernylocal uses that we do not wrap (`requests.post` of other queries) passes through
        return getattr(requests, name)

    def route(self, url: str) -> str:
        base = self.settings.service_url.rstrip("/")
        if base != DEFAULT_SERVICE_URL and url.startswith(DEFAULT_SERVICE_URL):
            return base + url[len(DEFAULT_SERVICE_URL) :]
        return url

    def get(self, url: str, timeout: float | None = None, **kwargs: Any) -> requests.Response:
        """One GET with up to ``max_retries`` retries (tenacity): a timeout, a dropped connection and HTTP 408, 429
        and 5xx are retried after an exponential back-off with jitter, or after the server's ``Retry-After``
        when that is longer; any other refusal raises at once (:meth:`_raise_if_final`)."""
        del timeout  # givernylocal passes a fixed 1000 s; the configured timeout applies instead
        url = self.route(url)
        what = redact(url.split("?", 1)[0], self.token)
        s = self.settings
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(s.max_retries + 1),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(_Retryable),
            sleep=self.sleep,
            before_sleep=lambda state: self._log_retry(state, what),
            reraise=True,
        )
        try:
            return retrying(self._attempt, url, what, kwargs)
        except _Retryable as last:
            raise JhtdbNetworkError(
                f"JHTDB request to {what} failed after {s.max_retries + 1} attempts; last problem: {last}. "
                "Finished samples are kept; rerun to resume."
            ) from None

    def _attempt(self, url: str, what: str, kwargs: dict[str, Any]) -> requests.Response:
        """One request: the response, a final error, or :class:`_Retryable` (raised outside the ``except``, so no
        exception that carries the request URL, and with it the token, is chained to what the caller sees)."""
        self.attempts += 1
        try:
            resp = self.session.get(url, timeout=self.settings.timeout_s, **kwargs)
        except (
            requests.exceptions.Timeout,
            requests.exceptions.ConnectionError,
            requests.exceptions.ChunkedEncodingError,
        ) as err:
            problem = f"{type(err).__name__}: {redact(str(err), self.token)}"
            retry_after = None
        else:
            if resp.status_code < 400:
                return resp
            self._raise_if_final(resp, what)
            problem = f"HTTP {resp.status_code}"
            retry_after = _retry_after(resp)
            if retry_after is not None and retry_after > RETRY_AFTER_MAX_S:
                raise JhtdbNetworkError(
                    f"JHTDB asks to wait {retry_after:.0f} s before the next request to {what} ({problem}, "
                    f"Retry-After), more than the {RETRY_AFTER_MAX_S:.0f} s a job waits. Finished samples are kept; "
                    "rerun later to resume."
                )
        raise _Retryable(problem, retry_after)

    def _wait(self, state: tenacity.RetryCallState) -> float:
        """Exponential back-off from ``backoff_s`` up to ``backoff_max_s``, plus up to ``backoff_s`` of random
        jitter, also at the cap (so that parallel jobs that failed together do not retry together), or the
        server's ``Retry-After`` if that is longer."""
        s = self.settings
        backoff = tenacity.wait_exponential(multiplier=s.backoff_s, max=s.backoff_max_s)
        delay = backoff(state) + random.uniform(0, s.backoff_s)
        error = state.outcome.exception() if state.outcome is not None else None
        if isinstance(error, _Retryable) and error.retry_after is not None:
            delay = max(delay, error.retry_after)
        return delay

    def _log_retry(self, state: tenacity.RetryCallState, what: str) -> None:
        problem = state.outcome.exception() if state.outcome is not None else None
        delay = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning(
            "JHTDB request to %s failed (%s); retry %d/%d in %.1f s",
            what,
            problem,
            state.attempt_number,
            self.settings.max_retries,
            delay,
        )

    def _raise_if_final(self, resp: requests.Response, what: str) -> None:
        """Raise for a response that retrying cannot fix (a refusal); return for a retryable one."""
        code = resp.status_code
        if code in RETRY_STATUSES:
            return
        description = redact(_describe(resp), self.token)
        token_words = ("token", "authoriz", "authentic", "unauthori", "forbidden")
        if code in (401, 403) or any(w in description.lower() for w in token_words):
            raise JhtdbAuthError(
                f"JHTDB refused the token from ${self.settings.token_env} (HTTP {code} from {what}): "
                f"{description or 'no description'}. Check that the variable holds your personal token."
            )
        raise JhtdbRequestError(f"JHTDB refused the request to {what} (HTTP {code}): {description}")


class _Retryable(Exception):
    """A failed attempt worth retrying; its text (already free of the token) says why."""

    def __init__(self, problem: str, retry_after: float | None = None) -> None:
        super().__init__(problem)
        self.retry_after = retry_after


def _retry_after(resp: requests.Response) -> float | None:
    """The seconds a ``Retry-After`` header asks for (delay seconds or an HTTP date), or None if absent or
    unreadable (then the back-off alone decides)."""
    value = resp.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return float(Retry().parse_retry_after(value))
    except (InvalidHeader, ValueError):
        log.warning("JHTDB sent an unreadable Retry-After header (%r); using the back-off", value[:100])
        return None


def _describe(resp: requests.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:500]
    desc = body.get("description", body) if isinstance(body, dict) else body
    return "\n".join(map(str, desc)) if isinstance(desc, list) else str(desc)


@contextlib.contextmanager
def routed_givernylocal(transport: RetryingTransport) -> Iterator[None]:
    """Point givernylocal's module-level ``requests`` at ``transport`` for the duration of the block."""
    import givernylocal.turbulence_gizmos.basic_gizmos as gizmos
    import givernylocal.turbulence_toolkit as toolkit

    saved = (toolkit.requests, gizmos.requests)
    toolkit.requests = transport  # type: ignore[assignment]
    gizmos.requests = transport  # type: ignore[assignment]
    try:
        yield
    finally:
        toolkit.requests, gizmos.requests = saved


# -- planning ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CropPlan:
    """One sample: its crop origin (1-based grid indices, x, y, z) and its JHTDB time indices (1-based)."""

    sample: int
    origin: tuple[int, int, int]
    time_indices: tuple[int, ...]


@dataclass(frozen=True)
class CutoutRequest:
    """One ``getCutout`` call: 1-based inclusive ranges, and where its result goes in the sample's array."""

    x: tuple[int, int]
    y: tuple[int, int]
    z: tuple[int, int]
    t: tuple[int, int]
    time_slice: tuple[int, int]
    z_slice: tuple[int, int]


def plan_crops(settings: JhtdbSettings, grid: tuple[int, int, int], n_frames: int) -> list[CropPlan]:
    """Crop origins and start times for every sample, from ``settings.seed`` alone (so a resume agrees).

    Crops lie inside the domain (no periodic wrap, which the service may not honour) and all their times
    are stored frames.
    """
    c = settings.crop
    span = (settings.n_times - 1) * settings.time_stride
    if any(c > g for g in grid):
        raise ValueError(f"jhtdb: crop {c} does not fit in the {grid} grid of {settings.dataset}")
    if span + 1 > n_frames:
        raise ValueError(f"jhtdb: {settings.n_times} times with stride {settings.time_stride} exceed {n_frames} frames")
    rng = np.random.default_rng(settings.seed)
    plans = []
    for s in range(settings.n_samples):
        origin = tuple(int(rng.integers(1, g - c + 2)) for g in grid)
        t_start = int(rng.integers(1, n_frames - span + 1))
        times = tuple(t_start + j * settings.time_stride for j in range(settings.n_times))
        plans.append(CropPlan(s, origin, times))  # type: ignore[arg-type]
    return plans


def plan_requests(plan: CropPlan, crop: int, max_points: int) -> list[CutoutRequest]:
    """Split one sample into requests of at most ``max_points`` grid points (counted over all times).

    Whole crops of several times go together when they fit; otherwise one time per request, and if even one
    time is too large, slabs along z.
    """
    per_time = crop**3
    n_times = len(plan.time_indices)
    ox, oy, oz = plan.origin
    xr_, yr_ = (ox, ox + crop - 1), (oy, oy + crop - 1)
    out = []
    if per_time <= max_points:
        per_req = max(1, min(n_times, max_points // per_time))
        for j0 in range(0, n_times, per_req):
            j1 = min(n_times, j0 + per_req)
            t = (plan.time_indices[j0], plan.time_indices[j1 - 1])
            out.append(CutoutRequest(xr_, yr_, (oz, oz + crop - 1), t, (j0, j1), (0, crop)))
    else:
        slab = max(1, max_points // crop**2)
        for j in range(n_times):
            ti = plan.time_indices[j]
            for z0 in range(0, crop, slab):
                z1 = min(crop, z0 + slab)
                out.append(CutoutRequest(xr_, yr_, (oz + z0, oz + z1 - 1), (ti, ti), (j, j + 1), (z0, z1)))
    return out


# -- download ---------------------------------------------------------------------------------------------
def _sample_path(work: Path, s: int) -> Path:
    return work / f"sample_{s:05d}.npz"


def _load_sample(path: Path, plan: CropPlan, shape: tuple[int, ...]) -> dict[str, np.ndarray] | None:
    """A finished sample from the work directory, or None if it is absent or does not match the plan."""
    if not path.exists():
        return None
    try:
        with np.load(path) as f:
            data = {k: f[k] for k in f.files}
    except Exception as err:  # a damaged file is simply downloaded again
        log.warning("JHTDB resume: %s is unreadable (%s); downloading it again", path.name, err)
        return None
    ok = (
        data.get("velocity") is not None
        and data["velocity"].shape == shape
        and tuple(data["origin"]) == plan.origin
        and tuple(data["time_indices"]) == plan.time_indices
        and np.isfinite(data["velocity"]).all()
    )
    if not ok:
        log.warning("JHTDB resume: %s does not match the crop plan; downloading it again", path.name)
        return None
    return data


def _fetch_sample(cube: Any, settings: JhtdbSettings, plan: CropPlan, token: str) -> dict[str, np.ndarray]:
    from givernylocal.turbulence_toolkit import getCutout

    c = settings.crop
    velocity = np.full((settings.n_times, 3, c, c, c), np.nan, dtype=np.float32)
    first_coords = np.full(3, np.nan)
    for req in plan_requests(plan, c, settings.max_points_per_request):
        ranges = np.array([req.x, req.y, req.z, req.t], dtype=np.int64)
        strides = np.array([1, 1, 1, settings.time_stride], dtype=np.int64)
        try:
            result = getCutout(cube, settings.variable, ranges, strides, verbose=False)
        except JhtdbError:
            raise
        except Exception as err:  # givernylocal raises bare Exceptions for bad data and client-side limits
            raise JhtdbRequestError(
                f"givernylocal getCutout failed for sample {plan.sample} (ranges x{req.x} y{req.y} z{req.z} "
                f"t{req.t}): {redact(str(err), token)}"
            ) from None
        names = sorted(result.data_vars, key=lambda name: int(re.findall(r"\d+", str(name))[-1]))
        expected = req.time_slice[1] - req.time_slice[0]
        if len(names) != expected:
            raise JhtdbRequestError(
                f"JHTDB returned {len(names)} time(s) for sample {plan.sample}, expected {expected}: {names}"
            )
        z0, z1 = req.z_slice
        for j, name in zip(range(*req.time_slice), names, strict=True):
            arr = np.asarray(result[name].values, dtype=np.float32)  # (z, y, x, component)
            if arr.shape != (z1 - z0, c, c, 3):
                raise JhtdbRequestError(f"JHTDB returned shape {arr.shape} for {name}, expected {(z1 - z0, c, c, 3)}")
            velocity[j, :, z0:z1] = np.moveaxis(arr, -1, 0)
        if z0 == 0:
            for i, axis in enumerate(("xcoor", "ycoor", "zcoor")):
                if axis in result.coords:
                    first_coords[i] = float(result.coords[axis].values[0])
    if not np.isfinite(velocity).all():
        raise JhtdbRequestError(f"JHTDB data for sample {plan.sample} is incomplete or not finite")
    return {
        "velocity": velocity,
        "origin": np.array(plan.origin),
        "time_indices": np.array(plan.time_indices),
        "first_coords": first_coords,
    }


def _save_sample(path: Path, data: dict[str, np.ndarray]) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **data)


def _grid_info(cube: Any, settings: JhtdbSettings) -> tuple[tuple[int, int, int], int, float, float]:
    """(grid size x, y, z), number of stored frames, grid spacing, and the client's per-request MB limit."""
    from givernylocal.turbulence_gizmos.basic_gizmos import get_dataset_resolution, get_dataset_spacing

    md = cube.metadata
    grid = tuple(int(v) for v in get_dataset_resolution(md, settings.dataset, settings.variable))
    spacing = [float(v) for v in get_dataset_spacing(md, settings.dataset, settings.variable)]
    n_frames = int(md["datasets"][settings.dataset]["simulation"]["tlims"]["n"])
    max_mb = float(md["constants"]["max_local_cutout_size"])
    if len(set(spacing)) != 1:
        raise JhtdbRequestError(f"{settings.dataset} has an anisotropic grid {spacing}; expected a cubic box")
    return grid, n_frames, spacing[0], max_mb  # type: ignore[return-value]


def download_jhtdb(
    settings: JhtdbSettings,
    out: str | Path,
    *,
    environ: dict[str, str] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Download the crops described by ``settings`` into the zarr store ``out``; return its content checksum.

    Resumable: finished samples persist in ``<out>.partial/`` and are not fetched again. The store is written
    only when all samples are present. Raises :class:`JhtdbAuthError` (missing/refused token),
    :class:`JhtdbNetworkError` (retries exhausted) or :class:`JhtdbRequestError` (refused request, bad data).
    """
    out = Path(out)
    requested = settings
    token = read_token(settings, environ)
    work = out.with_name(out.name + ".partial")
    work.mkdir(parents=True, exist_ok=True)
    transport = RetryingTransport(settings, token, sleep)
    with _redacted_logs(token), routed_givernylocal(transport):
        cube = _make_cube(settings, token, work)
        testing = cube.metadata["constants"].get("pyJHTDB_testing_token")
        grid, n_frames, dx, max_mb = _grid_info(cube, settings)
        # the client counts bytes on the unstrided box: 4 bytes x 3 components per point
        mb_points = int(max_mb * 1024**2 / (4 * 3))
        if settings.max_points_per_request > mb_points:
            settings = dataclasses.replace(settings, max_points_per_request=mb_points)
        if token == testing and settings.crop**3 > 4096:
            raise JhtdbAuthError(
                f"${settings.token_env} holds the public testing token (4096 points per request at most): "
                f"{settings.crop}³ crops need a personal token"
            )
        plans = plan_crops(settings, grid, n_frames)
        _check_plan_file(work, settings, plans)
        shape = (settings.n_times, 3, settings.crop, settings.crop, settings.crop)
        samples = []
        for plan in plans:
            path = _sample_path(work, plan.sample)
            data = _load_sample(path, plan, shape)
            if data is None:
                log.info("JHTDB: downloading sample %d/%d", plan.sample + 1, settings.n_samples)
                data = _fetch_sample(cube, settings, plan, token)
                _save_sample(path, data)
            else:
                log.info("JHTDB: sample %d/%d already downloaded", plan.sample + 1, settings.n_samples)
            samples.append(data)
    ds = _assemble(settings, plans, samples, dx)
    sha = write_store(ds, out, settings={"source": "jhtdb", **requested.to_dict()})
    shutil.rmtree(work, ignore_errors=True)
    return sha


def _make_cube(settings: JhtdbSettings, token: str, work: Path) -> Any:
    from givernylocal.turbulence_dataset import turb_dataset

    try:
        return turb_dataset(
            dataset_title=settings.dataset,
            output_path=str(work / "givernylocal"),
            auth_token=token,
            json_url=settings.json_url,
        )
    except JhtdbError:
        raise
    except Exception as err:
        raise JhtdbRequestError(
            f"givernylocal could not load the JHTDB metadata from {settings.json_url}: {redact(str(err), token)}"
        ) from None


def _check_plan_file(work: Path, settings: JhtdbSettings, plans: list[CropPlan]) -> None:
    """Record the plan; refuse to resume a work directory that was started with different settings."""
    record = {
        "fingerprint": settings.plan_fingerprint(),
        "plans": [dataclasses.asdict(p) for p in plans],
    }
    record = json.loads(json.dumps(record))  # tuples -> lists, as read back from disk
    path = work / "plan.json"
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except ValueError:
            old = None
        if old is not None and old != record:
            raise JhtdbRequestError(
                f"{work} holds a partial download made with different settings "
                f"({old.get('fingerprint')}); delete it or restore those settings"
            )
    write_json(path, record)


def _assemble(
    settings: JhtdbSettings, plans: list[CropPlan], samples: list[dict[str, np.ndarray]], dx: float
) -> xr.Dataset:
    """The shared store layout: local cell positions, per-sample crop origin (x0, y0, z0) and start t0."""
    c = settings.crop
    pos = np.arange(c) * dx
    origins = np.array([p.origin for p in plans], dtype=np.int64)  # 1-based (x, y, z)
    first = np.array([s["first_coords"] for s in samples])
    # positions of the crop origins: as reported by the service where it sent them, else from the indices
    phys = np.where(np.isfinite(first), first, (origins - 1) * dx)
    t_idx = np.array([p.time_indices for p in plans], dtype=np.int64)
    ds = xr.Dataset(
        {
            "velocity": (
                ("sample", "time", "component", "z", "y", "x"),
                np.stack([s["velocity"] for s in samples]),
            )
        },
        coords={
            "sample": np.arange(settings.n_samples),
            "time": np.arange(settings.n_times) * settings.time_stride * settings.snapshot_dt,
            "component": list(COMPONENTS),
            "z": pos,
            "y": pos,
            "x": pos,
            "t0": ("sample", (t_idx[:, 0] - 1) * settings.snapshot_dt),
            "x0": ("sample", phys[:, 0]),
            "y0": ("sample", phys[:, 1]),
            "z0": ("sample", phys[:, 2]),
        },
    )
    ds["velocity"].attrs["units"] = "JHTDB velocity units (box side 2π)"
    ds["velocity"].attrs["long_name"] = "velocity, components in (x, y, z) order"
    for name in ("x", "y", "z"):
        ds[name].attrs["units"] = "box length units (side 2π), relative to the crop origin"
    for name in ("x0", "y0", "z0"):
        ds[name].attrs["units"] = "box length units (side 2π)"
    ds["time"].attrs["units"] = "JHTDB time units, relative to the sample's first snapshot (t0)"
    ds["t0"].attrs["units"] = "JHTDB time units, (time index - 1) * snapshot_dt"
    ds.attrs.update(
        {
            "source": "jhtdb",
            "title": f"JHTDB {settings.dataset} {settings.variable}, {c}³ crops at native resolution",
            "units": json.dumps(
                {"length": "periodic box of side 2π", "time": "JHTDB units", "velocity": "length / time"}
            ),
            "grid": "cell positions i*dx inside each crop, dx = 2π/1024; axes (z, y, x) with x last",
            "dataset": settings.dataset,
            "crop_origins": json.dumps(origins.tolist()),
            "crop_origins_note": "1-based JHTDB grid indices (x, y, z) of each crop's first point",
            "time_indices": json.dumps(t_idx.tolist()),
            "time_indices_note": "1-based JHTDB time indices; index i is t = (i - 1) * snapshot_dt",
            "dx": dx,
        }
    )
    if settings.dataset == "isotropic1024coarse":
        # JHTDB's published parameters of this data set (not measured here)
        ds.attrs.update({"viscosity": 0.000185, "dissipation": 0.103, "re_lambda": 433.0})
    return ds
