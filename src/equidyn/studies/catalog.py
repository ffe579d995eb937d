"""The studies with training runs, by name: the one table generic code dispatches through.

The workflow (run grids, paths, settings per job) and the dynamics measures (``make_task`` of the measured run's
study) look a study up here. Each entry is a module implementing
:class:`equidyn.studies.description.StudyModule`; adding a study is a new module and one line below. The study
modules import nothing heavy at module level, so this stays cheap for the Snakefile.
"""

from __future__ import annotations

from . import exponax_study, levels, rotation, scaling, superres, tutorial
from .description import StudyDescription, StudyModule

STUDIES: dict[str, StudyModule] = {
    m.DESCRIPTION.name: m for m in (levels, rotation, superres, tutorial, scaling, exponax_study)
}


def study(name: str) -> StudyModule:
    """The study module called ``name``, or an error listing the known studies."""
    try:
        return STUDIES[name]
    except KeyError:
        raise ValueError(f"unknown study {name!r}; known: {sorted(STUDIES)}") from None


def description(name: str) -> StudyDescription:
    return study(name).DESCRIPTION


def measurable() -> tuple[str, ...]:
    """The studies whose runs the training-dynamics measures can take (``dynamics.runs``)."""
    return tuple(name for name, m in STUDIES.items() if m.DESCRIPTION.measurable)
