"""The held-out level protocol's plume groups (issue 20), checked in one place.

Group ``b`` of level ``l`` is base plumes ``b, b+l, b+2l, b+3l`` (the published recipe has ``b = 1``). The config
validation (before anything runs) and the level-store builder (before anything is written) both ask the same
question, so both call :func:`heldout_group_problems`; it imports nothing heavy so that the config check stays fast.
"""

from __future__ import annotations

#: a level store's splits; under the held-out protocol each is a non-empty list of base indices
SPLITS = ("train", "valid", "test")


def group_members(base_index: int, level: int) -> list[int]:
    """Base plume indices of plume group ``base_index`` of ``level`` (the published recipe has ``base_index`` 1)."""
    return [base_index + j * level for j in range(4)]


def heldout_group_problems(groups: dict[str, list[int]], level: int, n_base: int) -> list[str]:
    """Everything wrong with ``groups`` at ``level`` for a base store of ``n_base`` plumes, each problem naming the
    config key: a split missing or empty, a group in two splits (or twice), a negative index, a group whose highest
    member ``b + 3·level`` is not among the base plumes. Empty when the groups can be built."""
    missing = [s for s in SPLITS if not groups.get(s)]
    problems = []
    if missing:
        problems.append(f"levels.heldout needs a non-empty list of base indices for {list(SPLITS)}; missing {missing}")
    seen: dict[int, str] = {}
    for split in SPLITS:
        for b in groups.get(split) or []:
            b = int(b)
            if b in seen:
                problems.append(f"levels.heldout.{split}: group {b} is also in levels.heldout.{seen[b]}")
                continue
            seen[b] = split
            if b < 0:
                problems.append(f"levels.heldout.{split}: group {b} is negative")
                continue
            top = group_members(b, level)[-1]
            if top >= n_base:
                problems.append(
                    f"levels.heldout: group {b} of level {level} needs base plume {top}, but there are {n_base} "
                    f"base plumes (raise levels.base.n_sims to at least {top + 1})"
                )
    return problems


def check_heldout_groups(groups: dict[str, list[int]], level: int, n_base: int) -> dict[str, list[int]]:
    """``groups`` with int indices, or a ``ValueError`` listing :func:`heldout_group_problems`."""
    problems = heldout_group_problems(groups, level, n_base)
    if problems:
        raise ValueError("; ".join(problems))
    return {s: [int(b) for b in groups[s]] for s in SPLITS}
