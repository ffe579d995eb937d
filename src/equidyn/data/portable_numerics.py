"""One Intel MKL code path for the simulators, so a data store's checksum does not depend on the CPU that made it.

Why: torch's CPU wheels link Intel MKL, and MKL picks a code path per CPU at its first call in a process (AVX-512
kernels on a recent Intel Xeon, a generic path on AMD EPYC). PhiFlow's pressure solve (sparse CSR products in
torch) then differs in the last bits, and a few dozen steps of a flow carry that into the stored values. The
offline turbulence solver's ``torch.fft`` goes through MKL too (it gave the same bits either way at 16³, but is
pinned for the same reason). Measured: the level-0 store of ``config/scaling.yaml`` had
``content_sha256`` ``098bc6f8…`` on every AMD EPYC machine this project ran on, and ``1c7e4f29…`` on an Intel Xeon
with AVX-512. A study that gathers runs from several sittings (the scaling study's kept parts) then refuses to mix
them, correctly, because their data stores differ.

MKL's Conditional Numerical Reproducibility mode ``COMPATIBLE`` (Intel's documented ``MKL_CBWR`` setting) makes
every x86 CPU take the same path. With it the Intel machine rebuilt ``098bc6f8…`` bit for bit
(docs/decisions.md, "One MKL code path for the data").

MKL reads the mode once, at its first call in a process, and ignores later changes. So :func:`pin_mkl_branch`
sets it and then reads back the mode MKL actually runs with; if an earlier MKL call fixed another mode, it refuses
to simulate rather than write a store whose checksum depends on the CPU. The equidyn CLI (and the local job
server, which only imports torch) runs every data job in a process where MKL has not been called yet.

Only the simulators are pinned. Training keeps MKL's fastest path: a run's numbers are tied to its data by the
store's checksum, not to the bits of another machine's run.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

MKL_MODE_VARIABLE = "MKL_CBWR"
MKL_BRANCH = "COMPATIBLE"
# mkl_cbwr.h: the query selector for the code path, and the codes it returns (those checked against MKL_CBWR here)
_MKL_CBWR_BRANCH_QUERY = 1
_MKL_BRANCH_CODES = {1: "OFF (per-CPU dispatch)", 2: "AUTO", 3: "COMPATIBLE", 8: "SSE4_2", 10: "AVX2", 12: "AVX512"}


class MklBranchError(RuntimeError):
    """MKL already runs with another code path in this process, so simulated data would depend on the CPU."""


def mkl_branch_in_use() -> str | None:
    """The code path MKL runs with in this process, or None where torch has no MKL (non-x86 builds).

    Reading it fixes the mode if MKL has not been called yet, so call this only after setting ``MKL_CBWR``.
    """
    import torch

    if not torch.backends.mkl.is_available():
        return None
    library = Path(torch.__file__).parent / "lib" / "libtorch_cpu.so"
    try:
        query = ctypes.CDLL(str(library)).mkl_serv_cbwr_get  # the statically linked MKL's mkl_cbwr_get
    except (OSError, AttributeError):
        return None
    code = int(query(_MKL_CBWR_BRANCH_QUERY))
    return _MKL_BRANCH_CODES.get(code, f"code {code}")


def pin_mkl_branch() -> None:
    """Make MKL take its CPU-independent path in this process, or raise :class:`MklBranchError` if it is too late."""
    os.environ[MKL_MODE_VARIABLE] = MKL_BRANCH
    in_use = mkl_branch_in_use()
    if in_use is not None and in_use != MKL_BRANCH:
        raise MklBranchError(
            f"Intel MKL already runs with code path {in_use} in this process, because an MKL call came before the "
            f"simulator set {MKL_MODE_VARIABLE}={MKL_BRANCH}; the data it made now would have a checksum that "
            f"depends on this CPU. Simulate in a fresh process (the equidyn CLI does), or set "
            f"{MKL_MODE_VARIABLE}={MKL_BRANCH} in the environment before Python starts."
        )
