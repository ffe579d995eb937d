"""What a training run leaves behind, named once: the checkpoint names and the files of a run directory.

The early checkpoint is the weights after epoch ``EARLY_EPOCH`` (the BLOG's "epoch 3", docs/references.md
[BLOG]); its name is derived from that number, so renaming the early epoch is a change of this one constant, and
keeping one more checkpoint (say after epoch 10) is one more entry in ``EPOCH_CHECKPOINTS``.
The trainer, the study descriptions (:mod:`equidyn.studies.description`), the rules, the dynamics study and the
figures all take the names from here. Plain Python without torch: the Snakefile reads it at DAG-building time.
"""

from __future__ import annotations

EARLY_EPOCH = 3
EARLY_CHECKPOINT = f"epoch{EARLY_EPOCH}"
BEST_CHECKPOINT = "best"
#: checkpoints taken after a fixed epoch, name -> epoch; one more entry keeps and evaluates one more in every study
EPOCH_CHECKPOINTS: dict[str, int] = {EARLY_CHECKPOINT: EARLY_EPOCH}
#: every checkpoint a training job writes and evaluates, in the order tables and figures show them
CHECKPOINTS = (*EPOCH_CHECKPOINTS, BEST_CHECKPOINT)
#: a run trains at least this many epochs, so that every epoch checkpoint exists
MIN_EPOCHS = max(EPOCH_CHECKPOINTS.values())

HISTORY_FILE = "history.csv"
SUMMARY_FILE = "train.json"


def checkpoint_file(checkpoint: str) -> str:
    """``best.pt``, ``epoch3.pt``."""
    return f"{checkpoint}.pt"


def eval_file(evaluation: str) -> str:
    """``eval_best.json``: the scores and equivariance error of one checkpoint (or of one evaluation)."""
    return f"eval_{evaluation}.json"


def measure_file(measure: str, checkpoint: str) -> str:
    """``lie_epoch3.json``: one training-dynamics measure of one checkpoint."""
    return f"{measure}_{checkpoint}.json"


def checkpoint_of(path_stem: str, prefix: str = "") -> str:
    """The checkpoint name in a file stem such as ``eval_best`` (``prefix="eval_"``), checked against the names."""
    name = path_stem.removeprefix(prefix)
    if name not in CHECKPOINTS:
        raise ValueError(f"{path_stem!r} names no checkpoint; expected one of {CHECKPOINTS}")
    return name
