"""The local job server (equidyn.jobserver): a job forked from it is the same job, with the same exit status, and
nothing it starts outlives its client or the workflow."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from equidyn import jobserver

SRC = str(Path(jobserver.__file__).resolve().parents[1])

# A server whose "jobs" are small probes of what a job sees and how it ends (no heavy imports: modules=()).
SERVER = r"""
import os, sys, time
from equidyn.jobserver import serve

def run(argv):
    cmd = argv[0]
    if cmd == "echo":
        print("cwd", os.getcwd(), "X", os.environ.get("X"), "argv", argv[1:])
        print("to stderr", file=sys.stderr)
        return 3
    if cmd == "exit":
        sys.exit(int(argv[1]))
    if cmd == "raise":
        raise RuntimeError("boom in the job")
    if cmd == "kill-self":
        os.kill(os.getpid(), int(argv[1]))
    if cmd == "sleep":
        with open(argv[1], "w") as fh:
            fh.write(str(os.getpid()))
        time.sleep(120)
        return 0
    if cmd == "sleep-tree":  # a job that started a process of its own (a data loader's worker, a solver)
        import subprocess
        child = subprocess.Popen(["sleep", "120"])
        with open(argv[1], "w") as fh:
            fh.write(f"{os.getpid()} {child.pid}")
        time.sleep(120)
        return 0
    if cmd == "threads":
        import torch
        print("threads", torch.get_num_threads())
        return 0
    return 99

serve(sys.argv[1], modules=tuple(sys.argv[2:]), run=run, parent=int(os.environ.get("PARENT", "0")))
"""

CLIENT = "import sys\nfrom equidyn.jobserver import delegate\nsys.exit(delegate(sys.argv[1:]))"


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", ""), **extra}


@pytest.fixture
def server(tmp_path):
    """A probe server on a short socket path; yields (path, process)."""
    path = os.path.join(f"/tmp/eq-js-{os.getpid()}-{tmp_path.name[-12:]}.sock")
    proc = subprocess.Popen([sys.executable, "-c", SERVER, path], env=_env(), stderr=subprocess.PIPE, text=True)
    _wait_for(lambda: os.path.exists(path))
    yield path, proc
    if proc.poll() is None:
        proc.terminate()
        proc.wait()
    assert not os.path.exists(path)  # the server removes its socket


def _wait_for(condition) -> None:
    """Poll until ``condition()`` holds. No clock: machine speed varies 2x, and pytest-timeout (pyproject) is the
    hang guard of every fast test."""
    while not condition():
        time.sleep(0.02)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().rsplit(")", 1)[-1].split()[0] != "Z"


def client(path: str, *argv: str, cwd: Path | None = None, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", CLIENT, *argv], cwd=cwd, env=_env(EQUIDYN_JOB_SERVER=path, **env),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def test_exit_status_follows_the_shell_convention() -> None:
    assert jobserver.exit_status(0) == 0
    assert jobserver.exit_status(5 << 8) == 5
    assert jobserver.exit_status(signal.SIGKILL) == 128 + 9


def test_without_a_server_the_job_runs_in_its_own_process(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(jobserver.ENV, raising=False)
    assert jobserver.delegate(["validate-config"]) is None
    assert jobserver.delegate(["validate-config"], path=str(tmp_path / "nothing-listens")) is None


def test_the_job_gets_the_clients_argv_cwd_environment_and_output(server, tmp_path) -> None:
    path, _ = server
    out = client(path, "echo", "a b", "--c", cwd=tmp_path, X="42")
    stdout, stderr = out.communicate()
    assert out.returncode == 3
    assert stdout.strip() == f"cwd {tmp_path} X 42 argv ['a b', '--c']"
    assert stderr.splitlines()[0] == "to stderr"
    assert "the job's peak RSS was" in stderr.splitlines()[-1]  # logged for the job, not its client


@pytest.mark.parametrize(
    ("argv", "code", "stderr"),
    [(("exit", "7"), 7, ""), (("raise",), 1, "RuntimeError: boom in the job"), (("kill-self", "9"), 137, ""),
     (("kill-self", "15"), 143, ""), (("unknown",), 99, "")],
)  # fmt: skip
def test_the_client_exits_with_the_jobs_status(server, argv, code, stderr) -> None:
    out = client(server[0], *argv)
    _, err = out.communicate()
    assert out.returncode == code
    assert stderr in err


def test_torch_threads_come_from_the_jobs_environment(tmp_path) -> None:
    path = f"/tmp/eq-js-threads-{os.getpid()}.sock"
    proc = subprocess.Popen([sys.executable, "-c", SERVER, path, "torch"], env=_env())
    try:
        _wait_for(lambda: os.path.exists(path))
        for n in ("1", "2"):
            out = client(path, "threads", OMP_NUM_THREADS=n)
            assert out.communicate()[0].strip() == f"threads {n}"
    finally:
        proc.terminate()
        proc.wait()


def test_a_signal_to_the_client_reaches_the_job(server, tmp_path) -> None:
    pidfile = tmp_path / "pid"
    out = client(server[0], "sleep", str(pidfile))
    _wait_for(lambda: pidfile.exists() and pidfile.read_text())
    job = int(pidfile.read_text())
    out.send_signal(signal.SIGTERM)  # what Snakemake sends a job it cancels
    out.communicate()
    assert out.returncode == 128 + signal.SIGTERM
    _wait_for(lambda: not _alive(job))


def test_a_killed_client_takes_its_job_with_it(server, tmp_path) -> None:
    pidfile = tmp_path / "pid"
    out = client(server[0], "sleep", str(pidfile))
    _wait_for(lambda: pidfile.exists() and pidfile.read_text())
    job = int(pidfile.read_text())
    out.kill()
    out.wait()
    _wait_for(lambda: not _alive(job))
    again = client(server[0], "exit", "0")  # and the server carries on
    again.communicate()
    assert again.returncode == 0


def test_a_stopped_server_fails_the_running_job_and_kills_it(server, tmp_path) -> None:
    path, proc = server
    pidfile = tmp_path / "pid"
    out = client(path, "sleep", str(pidfile))
    _wait_for(lambda: pidfile.exists() and pidfile.read_text())
    job = int(pidfile.read_text())
    proc.terminate()
    proc.wait()
    _, err = out.communicate()
    assert out.returncode == 1 and "stopped before the job finished" in err
    assert not _alive(job)


def _probe_server(path: str, *modules: str, **env: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", SERVER, path, *modules], env=_env(**env), stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    _wait_for(lambda: os.path.exists(path) or proc.poll() is not None)
    return proc


def test_a_killed_server_leaves_no_job_running(tmp_path) -> None:
    """SIGKILL of the server mid-job (issue 22): its client kills the job's process group, so neither the job nor
    what it started outlives it (they used to keep training as orphans and write outputs a rerun trusted)."""
    path = f"/tmp/eq-js-killed-{os.getpid()}.sock"
    proc = _probe_server(path)
    pidfile = tmp_path / "pids"
    out = client(path, "sleep-tree", str(pidfile))
    try:
        _wait_for(lambda: pidfile.exists() and len(pidfile.read_text().split()) == 2)
        job, started = map(int, pidfile.read_text().split())
        proc.kill()
        proc.wait()
        _, err = out.communicate()
        assert out.returncode == 1 and "stopped before the job finished" in err
        _wait_for(lambda: not _alive(job) and not _alive(started))
    finally:
        for p in (proc, out):
            if p.poll() is None:
                p.kill()
        Path(path).unlink(missing_ok=True)


def test_a_job_dies_with_its_server_even_when_its_client_cannot_act(tmp_path) -> None:
    """The kernel's part (PR_SET_PDEATHSIG): with the client stopped, a killed server still takes its job along."""
    path = f"/tmp/eq-js-pdeath-{os.getpid()}.sock"
    proc = _probe_server(path)
    pidfile = tmp_path / "pid"
    out = client(path, "sleep", str(pidfile))
    try:
        _wait_for(lambda: pidfile.exists() and pidfile.read_text())
        job = int(pidfile.read_text())
        out.send_signal(signal.SIGSTOP)
        proc.kill()
        proc.wait()
        _wait_for(lambda: not _alive(job))
    finally:
        for p in (proc, out):
            if p.poll() is None:
                p.kill()
                p.wait()
        Path(path).unlink(missing_ok=True)


def test_a_module_that_fails_to_preload_does_not_stop_the_server(tmp_path) -> None:
    """Any import error in the preload (``MPLBACKEND=bogus``: ValueError) is logged and skipped (issue 22); the
    server used to die and its connected jobs to fail with ConnectionResetError."""
    (tmp_path / "broken_on_import.py").write_text("raise ValueError('bogus backend')\n")
    path = f"/tmp/eq-js-preload-{os.getpid()}.sock"
    proc = _probe_server(path, "broken_on_import", PYTHONPATH=f"{SRC}{os.pathsep}{tmp_path}")
    try:
        out = client(path, "exit", "5")
        out.communicate()
        assert out.returncode == 5
        assert proc.poll() is None
    finally:
        proc.terminate()
        _, log = proc.communicate()
    assert "not preloading broken_on_import" in log and "ValueError: bogus backend" in log


def test_a_server_gone_before_the_job_started_runs_it_in_the_clients_process(tmp_path) -> None:
    """A server that hangs up before it forked the job ran nothing: the client runs the job itself."""
    path = f"/tmp/eq-js-gone-{os.getpid()}.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    try:
        hang_up = threading.Thread(target=lambda: listener.accept()[0].close())
        hang_up.start()
        assert jobserver.delegate(["validate-config"], path=path) is None
        hang_up.join()
    finally:
        listener.close()
        Path(path).unlink(missing_ok=True)


def test_a_bogus_matplotlib_backend_leaves_the_real_server_serving(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(jobserver.ENV, raising=False)
    log = tmp_path / "server.log"
    handle = jobserver.start(sys.executable, str(log), _env(MPLBACKEND="bogus"))
    assert handle is not None
    try:
        out = subprocess.run(
            [sys.executable, "-m", "equidyn.cli", "validate-config", "/nonexistent.yaml"],
            env=_env(MPLBACKEND="bogus"), capture_output=True, text=True,
        )  # fmt: skip
        assert out.returncode == 1 and "/nonexistent.yaml" in out.stderr
        assert "the job's peak RSS was" in out.stderr  # the server ran it
        assert handle.process.poll() is None
    finally:
        handle.stop()
    assert "not preloading matplotlib.pyplot" in log.read_text()


def test_the_server_stops_when_the_workflow_is_gone(tmp_path) -> None:
    path = f"/tmp/eq-js-parent-{os.getpid()}.sock"
    workflow = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    proc = subprocess.Popen([sys.executable, "-c", SERVER, path], env=_env(PARENT=str(workflow.pid)))
    try:
        _wait_for(lambda: os.path.exists(path))
        pidfile = tmp_path / "pid"
        out = client(path, "sleep", str(pidfile))
        _wait_for(lambda: pidfile.exists() and pidfile.read_text())
        job = int(pidfile.read_text())
        workflow.kill()
        workflow.wait()
        proc.wait()
        assert not os.path.exists(path)
        _wait_for(lambda: not _alive(job))
        out.communicate()
        assert out.returncode == 1
    finally:
        for p in (workflow, proc):
            if p.poll() is None:
                p.kill()


def test_start_exports_the_socket_and_stop_removes_it(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(jobserver.ENV, raising=False)
    handle = jobserver.start(sys.executable, str(tmp_path / "log" / "server.log"), _env())
    assert handle is not None
    try:
        assert os.environ[jobserver.ENV] == handle.path and os.path.exists(handle.path)
        out = subprocess.run(
            [sys.executable, "-m", "equidyn.cli", "validate-config", "/nonexistent.yaml"], env=_env(),
            capture_output=True, text=True,
        )  # fmt: skip
        assert out.returncode == 1 and "/nonexistent.yaml" in out.stderr  # the real CLI, run by the server
    finally:
        handle.stop()
    assert jobserver.ENV not in os.environ and not os.path.exists(handle.directory)
    handle.stop()  # idempotent: onsuccess/onerror and atexit may both call it


def test_start_gives_up_cleanly_when_the_server_cannot_start(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(jobserver.ENV, raising=False)
    assert jobserver.start("/bin/false", str(tmp_path / "server.log")) is None
    assert jobserver.ENV not in os.environ


@pytest.mark.parametrize(
    ("local_exec", "deployment", "enabled"),
    [(False, set(), True), (True, {"conda"}, True), (True, set(), False)],
)
def test_no_server_on_a_cluster_under_conda_or_when_disabled(tmp_path, local_exec, deployment, enabled) -> None:
    wf = SimpleNamespace(local_exec=local_exec, deployment_settings=SimpleNamespace(deployment_method=deployment))
    assert jobserver.start_for_workflow(wf, enabled=enabled, src=SRC, log=str(tmp_path / "log")) is None


def test_start_removes_the_directories_that_killed_workflows_left(tmp_path) -> None:
    """A SIGKILLed Snakemake leaves its server's /tmp/equidyn-jobs-* directory (issue 22): gone servers' old
    directories go; a live server's, and one too young to tell (a server starting now), stay."""
    old = time.time() - 2 * jobserver.READY_TIMEOUT_S

    def directory(name: str) -> Path:
        d = tmp_path / f"{jobserver.DIRECTORY_PREFIX}{name}"
        d.mkdir()
        return d

    empty, young = directory("empty"), directory("young")
    dead = directory("dead")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as gone:
        gone.bind(str(dead / "socket"))  # a SIGKILLed server's socket: the file stays, nobody listens
    live = directory("live")
    proc = _probe_server(str(live / "socket"))
    try:
        other = tmp_path / "unrelated"
        other.mkdir()
        for d in (empty, dead, live, other):
            os.utime(d, (old, old))
        assert sorted(jobserver.remove_stale_directories(tmp_path)) == sorted([empty, dead])
        assert young.exists() and live.exists() and other.exists()
        out = client(str(live / "socket"), "exit", "0")  # the live server, probed, still serves
        out.communicate()
        assert out.returncode == 0
    finally:
        proc.terminate()
        _, log = proc.communicate()
    assert "bad request" not in log  # the probe is not logged as a failed request
