"""A local job server: one process imports torch (and the other heavy modules) once, and forks each job from it.

Why: on a laptop every Snakemake job is a fresh ``python -m equidyn.cli …`` process, and importing torch, numpy,
xarray and escnn costs it 1.5–2.5 s before its first step — about a third of the demo's job time (docs/benchmarks.md,
"Per-job fixed cost"). With the server, a job's process is a thin client: it hands its argv, working directory,
environment and its stdin/stdout/stderr (the rule's ``> {log} 2>&1`` included) to the server, which forks a child
that already has those modules imported; the child runs ``equidyn.cli.main`` exactly as the process would have, and
the client exits with the child's exit status. Snakemake sees an ordinary shell command that succeeds or fails.

Guarantees (each tested in tests/test_jobserver.py):

* **Same job.** The child gets the client's argv, cwd, environment and file descriptors 0–2, and its torch
  intra-op threads from ``OMP_NUM_THREADS`` (what Snakemake sets for the job's ``threads:``), so a job's outputs are
  identical with or without the server.
* **Same status.** The client exits with the job's exit code, or 128 + N if the job was killed by signal N (the
  shell's convention), so a failed or killed job fails the rule.
* **No orphans.** A client that gets SIGTERM/SIGINT/SIGHUP forwards it to the job's process group; a client that
  dies (SIGKILL) closes its connection, and the server kills the job. The server exits, killing its jobs, when the
  process that started it (Snakemake) is gone. A server that is killed itself (SIGKILL, the OOM killer) takes its
  jobs with it: each job is forked with ``PR_SET_PDEATHSIG`` = SIGKILL (Linux), and its client, which learns the
  job's pid when the job starts, kills the job's process group (what the job started included) when the
  connection drops before the job's status arrives.
* **A broken preload is not a broken server.** A module whose import fails in the server for any reason (not only
  ImportError: ``MPLBACKEND=bogus`` makes ``matplotlib.pyplot`` raise ValueError) is skipped, with the error in
  the server's log; a job that needs it imports it itself and fails, if it does, with the error in its own log.
  A server that is gone before it started a job (it died, or stopped meanwhile) is no server: the client runs the
  job in its own process.
* **Optional.** Without ``EQUIDYN_JOB_SERVER`` in the environment, or when its socket does not answer, the job
  runs in its own process as before. The Snakefile starts a server only for local execution (never in a dry run
  or on a cluster, where each job runs on its own node and Snakemake's ``group:`` jobs already share allocations).

What it does not do: memory in a job's Snakemake ``benchmark:`` file is the client's, not the job's (the job is
not the shell's descendant); the paper-scale check, which derives memory requests from those files, therefore runs
without the server (scripts/paper_check.sh). Code edited while a workflow runs is not seen by later jobs of that
run (the server imported it once); a new ``snakemake`` invocation starts a new server.
"""

from __future__ import annotations

import array
import atexit
import contextlib
import importlib
import json
import os
import resource
import select
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

ENV = "EQUIDYN_JOB_SERVER"  # the socket path; set by the Snakefile's onstart for local runs
# Imported once by the server. Order: what most jobs need first. Any that is not installed is skipped.
# torch._dynamo: torch.optim's optimisers import it on construction (≈ 1 s), so every training job needs it.
PRELOAD = (
    "numpy",
    "torch",
    "torch._dynamo",
    "pandas",
    "xarray",
    "zarr",
    "escnn.nn",
    "matplotlib.pyplot",
    "phi.torch.flow",
)
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
_STATUS = struct.Struct("!i")
_HEADER = struct.Struct("!I")
POLL_S = 0.05


def exit_status(wait_status: int) -> int:
    """A shell-style exit code from an ``os.waitpid`` status: the code, or 128 + the signal that killed the job."""
    if os.WIFSIGNALED(wait_status):
        return 128 + os.WTERMSIG(wait_status)
    return os.WEXITSTATUS(wait_status)


# --------------------------------------------------------------------------------------------------- the client


def delegate(argv: Sequence[str], path: str | None = None) -> int | None:
    """Run the CLI job ``argv`` in the server at ``path`` (default ``$EQUIDYN_JOB_SERVER``); its exit code.

    ``None`` means there is no server to run it (no path, or nothing listening): the caller runs the job itself.
    """
    path = path or os.environ.get(ENV)
    if not path:
        return None
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        return None
    header = json.dumps({"argv": list(argv), "cwd": os.getcwd(), "env": dict(os.environ)}).encode()
    fds = array.array("i", [0, 1, 2])

    def forward(signum: int, _frame: object) -> None:
        with contextlib.suppress(OSError):
            sock.sendall(bytes([signum]))

    previous = {s: signal.signal(s, forward) for s in FORWARDED_SIGNALS}
    try:
        try:
            sock.sendmsg([_HEADER.pack(len(header)) + header], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fds.tobytes())])
            job = _recv_int(sock)
        except OSError:
            job = None
        if job is None:  # the server went away before it forked the job: nothing ran, so run it here
            print(f"equidyn: the job server at {path} did not start the job; running it in this process",
                  file=sys.stderr)  # fmt: skip
            return None
        try:
            status = _recv_int(sock)
        except OSError:
            status = None
        if status is None:
            # the server died (SIGKILL, OOM) while the job ran: the job is forked with PR_SET_PDEATHSIG, and
            # anything it started is in its process group, which no one else would end (the group only: a pid
            # alone may have been reused by now)
            with contextlib.suppress(OSError):
                os.killpg(job, signal.SIGKILL)
            print(f"equidyn: the job server at {path} stopped before the job finished; its job (pid {job}) "
                  "was killed", file=sys.stderr)  # fmt: skip
            return 1
        return status
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        sock.close()


def _recv_int(sock: socket.socket) -> int | None:
    """One network-order int from ``sock``: the job's pid, then its exit status; ``None`` if the peer hung up."""
    data = b""
    while len(data) < _STATUS.size:
        chunk = sock.recv(_STATUS.size - len(data))
        if not chunk:
            return None
        data += chunk
    return _STATUS.unpack(data)[0]


# --------------------------------------------------------------------------------------------------- the server


class _Probe(Exception):
    """A connection closed without a request."""


def _recv_request(conn: socket.socket) -> tuple[dict, list[int]]:
    """Read one request: a length-prefixed JSON header and the client's three file descriptors."""
    fds = array.array("i")
    msg, anc, _flags, _addr = conn.recvmsg(65536, socket.CMSG_SPACE(3 * fds.itemsize))
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            fds.frombytes(data[: len(data) - len(data) % fds.itemsize])
    if not msg and not anc:
        raise _Probe
    if len(msg) < _HEADER.size:
        raise ValueError("truncated request")
    (size,) = _HEADER.unpack(msg[: _HEADER.size])
    body = msg[_HEADER.size :]
    while len(body) < size:
        chunk = conn.recv(size - len(body))
        if not chunk:
            raise ValueError("truncated request")
        body += chunk
    if len(fds) != 3:
        raise ValueError(f"expected 3 file descriptors, got {len(fds)}")
    return json.loads(body), list(fds)


_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def _die_with_parent(parent: int) -> None:
    """Have the kernel SIGKILL this process when the server (its parent) dies, however it dies (Linux only).

    Without it a killed server leaves its running jobs as orphans that keep training and later write complete
    outputs that a rerun trusts (issue 22). Checked after the call: a server that died before it was set is
    already gone.
    """
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) != 0:
            print(f"equidyn job server: prctl(PR_SET_PDEATHSIG) failed: errno {ctypes.get_errno()}", file=sys.stderr)
    if os.getppid() != parent:
        os._exit(128 + signal.SIGKILL)


def _run_child(request: dict, fds: list[int], run: Callable[[list[str]], int], server: int) -> None:
    """In the forked child: become the client's job, run it, and exit with its status. Never returns."""
    code = 1
    try:
        _die_with_parent(server)
        os.setpgid(0, 0)  # its own process group, so a forwarded signal reaches anything the job starts
        for s in (*FORWARDED_SIGNALS, signal.SIGCHLD):
            signal.signal(s, signal.SIG_DFL)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = ["equidyn", *request["argv"]]
        threads = os.environ.get("OMP_NUM_THREADS", "")
        if threads.isdigit() and int(threads) > 0 and "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(int(threads))
        code = run(list(request["argv"]))
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if not isinstance(exc.code, int) and exc.code is not None:
            print(exc.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        try:
            atexit._run_exitfuncs()
            # the job's own peak memory, which its Snakemake benchmark file cannot see (it records the client's)
            peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"equidyn job server: the job's peak RSS was {peak_mb:.0f} MB", file=sys.stderr)
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code & 0xFF if code >= 0 else 1)


def _default_run(argv: list[str]) -> int:
    from equidyn.cli import main

    return main(argv)


def preload(modules: Sequence[str] = PRELOAD) -> list[str]:
    """Import ``modules``, skipping any that is not installed or fails to import; the names imported.

    A failure is reported (the server's log) and otherwise ignored: the jobs that need the module import it
    themselves, as they would without a server, and one that fails does so with the error in its own log.
    """
    done = []
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        except Exception:  # any import-time error (a bad MPLBACKEND: ValueError) must not stop the server
            print(f"equidyn job server: not preloading {name}, its import failed:", file=sys.stderr)
            traceback.print_exc()
            continue
        if name == "torch":
            # Before anything can run a torch op here: a GNU OpenMP thread pool that exists at fork time hangs the
            # child's first parallel op. At one thread the pool is never created; each child sets its own threads.
            module.set_num_threads(1)
        done.append(name)
    return done


def serve(
    path: str,
    modules: Sequence[str] = PRELOAD,
    run: Callable[[list[str]], int] = _default_run,
    parent: int | None = None,
) -> None:
    """Listen on the Unix socket ``path`` and run each request in a forked child until told to stop.

    The socket is bound before the heavy imports, so a job that starts meanwhile waits for them instead of falling
    back to its own imports. ``parent``: stop when this process is gone (default: the process that started us).
    Stops on SIGTERM/SIGINT, killing the running jobs, and removes the socket.
    """
    parent = os.getppid() if parent is None else parent
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    if os.path.exists(path):
        os.unlink(path)
    listener.bind(path)
    listener.listen(64)
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda s, _f: stopping.append(s))
    signal.signal(signal.SIGINT, lambda s, _f: stopping.append(s))
    preload(modules)
    sys.stdout.flush()
    sys.stderr.flush()
    jobs: dict[int, socket.socket] = {}  # child pid -> its client's connection
    try:
        while not stopping and _alive(parent):
            readable, _, _ = select.select([listener, *jobs.values()], [], [], POLL_S)
            for sock in readable:
                if sock is listener:
                    _accept(listener, jobs, run)
                else:
                    _client_event(sock, jobs)
            _reap(jobs)
    finally:
        for pid in jobs:
            _kill_group(pid, signal.SIGKILL)
        for pid in list(jobs):
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
            jobs.pop(pid).close()
        listener.close()
        if os.path.exists(path):
            os.unlink(path)


def _alive(pid: int) -> bool:
    if pid <= 1:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return os.getppid() == pid or _is_not_zombie(pid)


def _is_not_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def _accept(listener: socket.socket, jobs: dict[int, socket.socket], run: Callable[[list[str]], int]) -> None:
    conn, _ = listener.accept()
    try:
        conn.settimeout(5.0)  # a client sends its request at once; one that stalls must not stall the server
        request, fds = _recv_request(conn)
        conn.settimeout(None)
    except _Probe:  # a connection that hung up at once: remove_stale_directories asking whether we are alive
        conn.close()
        return
    except (OSError, ValueError) as exc:
        print(f"equidyn job server: bad request ({exc})", file=sys.stderr)
        conn.close()
        return
    server = os.getpid()
    pid = os.fork()
    if pid == 0:  # the job
        listener.close()
        for other in jobs.values():
            other.close()
        conn.close()
        _run_child(request, fds, run, server)
    for fd in fds:
        os.close(fd)
    jobs[pid] = conn
    with contextlib.suppress(OSError):  # the client kills the job's group should this server die (a gone client: _reap)
        conn.sendall(_STATUS.pack(pid))


def _client_event(conn: socket.socket, jobs: dict[int, socket.socket]) -> None:
    """A client sent a signal number to forward, or hung up (it was killed): pass the signal on, or kill the job."""
    pid = next(p for p, c in jobs.items() if c is conn)
    try:
        data = conn.recv(16)
    except OSError:
        data = b""
    if data:
        for signum in data:
            _kill_group(pid, signum)
    else:
        _kill_group(pid, signal.SIGKILL)


def _kill_group(pid: int, signum: int) -> None:
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def _reap(jobs: dict[int, socket.socket]) -> None:
    while jobs:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = jobs.pop(pid, None)
        if conn is None:
            continue
        with contextlib.suppress(OSError):
            conn.sendall(_STATUS.pack(exit_status(status)))
        conn.close()


# ----------------------------------------------------------------------------------------- starting and stopping

READY_TIMEOUT_S = 30.0


class Handle:
    """A started server: its process, socket and log. ``stop()`` is idempotent (onsuccess, onerror and atexit)."""

    def __init__(self, process: subprocess.Popen, directory: str, log: str) -> None:
        self.process, self.directory, self.log = process, directory, log
        self.path = os.path.join(directory, "socket")

    def stop(self) -> None:
        if os.environ.get(ENV) == self.path:
            del os.environ[ENV]
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


DIRECTORY_PREFIX = "equidyn-jobs-"  # in the temporary directory: a Unix socket path has at most 107 bytes


def remove_stale_directories(root: str | os.PathLike | None = None) -> list[Path]:
    """Remove the socket directories of servers that are gone; return them.

    A SIGKILLed Snakemake cannot run ``Handle.stop``, so its server (which exits when Snakemake is gone) leaves
    its directory behind, one per kill. A directory is stale when its socket is absent or refuses connections and
    it is older than ``READY_TIMEOUT_S`` (a younger one may belong to a server that another workflow is starting
    right now); only this user's directories are considered.
    """
    root = Path(root or tempfile.gettempdir())
    removed = []
    for directory in root.glob(f"{DIRECTORY_PREFIX}*"):
        try:
            info = directory.lstat()
        except OSError:
            continue
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            continue
        if time.time() - info.st_mtime < READY_TIMEOUT_S or _answers(directory / "socket"):
            continue
        shutil.rmtree(directory, ignore_errors=True)
        removed.append(directory)
    return removed


def _answers(path: Path) -> bool:
    """Whether a server listens on the socket ``path`` (a connection that sends nothing: the server ignores it)."""
    if not path.exists():
        return False
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return False
    return True


def start(python: str, log: str, env: dict[str, str] | None = None) -> Handle | None:
    """Start a server with the interpreter the jobs use, export its socket as ``$EQUIDYN_JOB_SERVER``; its handle.

    Returns ``None`` (the jobs then run in their own processes) if the server does not come up within
    ``READY_TIMEOUT_S``; why is in ``log``. The server is told to stop when this process is gone. The directories
    that killed workflows left behind are removed first.
    """
    remove_stale_directories()
    directory = tempfile.mkdtemp(prefix=DIRECTORY_PREFIX)
    Path(log).parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [python, "-m", "equidyn.jobserver", os.path.join(directory, "socket"), "--parent", str(os.getpid())],
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
    handle = Handle(process, directory, log)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not os.path.exists(handle.path):
        if process.poll() is not None or time.monotonic() > deadline:
            handle.stop()
            return None
        time.sleep(0.02)
    os.environ[ENV] = handle.path
    atexit.register(handle.stop)
    return handle


def start_for_workflow(workflow: object, enabled: bool, src: str, log: str) -> Handle | None:
    """The Snakefile's onstart: a server for a local run that uses the current environment, else ``None``.

    Not for a cluster run (jobs run on other nodes), nor under ``--sdm conda``/apptainer (jobs run in an environment
    that Snakemake activates per job, which the server would not be in), nor when ``local_job_server: false``.
    The server runs the ``python`` that the jobs' shell commands find on ``PATH``, with the package's source first on
    ``PYTHONPATH`` as in the jobs' shell prefix.
    """
    deployment = getattr(getattr(workflow, "deployment_settings", None), "deployment_method", None)
    python = shutil.which("python")
    if not enabled or not getattr(workflow, "local_exec", False) or deployment or python is None:
        return None
    env = dict(os.environ)
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return start(python, log, env)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m equidyn.jobserver SOCKET [--parent PID]``: serve until the parent is gone or told to stop."""
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("socket")
    p.add_argument("--parent", type=int, default=None, help="stop when this process is gone (default: our parent)")
    args = p.parse_args(argv)
    serve(args.socket, parent=args.parent)
    return 0


if __name__ == "__main__":
    sys.exit(main())
