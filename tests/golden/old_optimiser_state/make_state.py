"""Writes ``state/``: a run's saved training state (``last.pt`` and the checkpoints it names) as equidyn's
hand-written Adam/ExponentialLR (``training/optim.py``, last in commit 7609966) wrote it, for the resume tests in
``tests/test_training.py``.

Written with the ``src/`` of 916d5d7 (its trainer and optimiser are those of 7609966) and this file and
``tests/test_training.py`` as they are now:
``PYTHONPATH=<that src> python tests/golden/old_optimiser_state/make_state.py``.
The level store is ``test_training.make_level_store``'s, the run the ``convnet`` run of ``test_training.SETTINGS``
trained for 3 epochs, seed 0.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))

from conftest import smooth_field  # noqa: E402
from equidyn.studies import levels  # noqa: E402
from test_training import SETTINGS, make_level_store  # noqa: E402

if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        store = make_level_store(Path(tmp), smooth_field, np.random.default_rng(3))
        section = {**SETTINGS, "training": {**SETTINGS["training"], "epochs": 3}}
        settings = levels.run_settings(section, {"model": "convnet"})
        run_dir = Path(tmp) / "run"
        levels.train_run(settings, store, run_dir, model="convnet", alpha=0.0, level=1, seed=0)
        shutil.rmtree(HERE / "state", ignore_errors=True)
        shutil.copytree(run_dir / "state", HERE / "state")
