"""Every command that README.md and docs/*.md show runs as written — checked by parsing it, without running it.

Commands are taken from code spans, fenced blocks and indented blocks: each ``snakemake …``, ``equidyn …``,
``python -m equidyn.cli …``, ``python -m <module> …`` and ``python <script> …``. Then

* a Snakemake command is parsed by Snakemake's own argument parser (which also reads ``--set-threads``) and its
  ``--config`` entries by Snakemake's own ``parse_config`` (so ``--config key=value target`` fails as it does for a
  user: the target is read as a config entry, and likewise after ``--set-threads``); every ``--configfile`` and
  ``--profile`` must exist (so a target written after ``--configfile`` fails as a missing file), and every target
  must be a rule of the workflow or a path below ``results/``;
* an ``equidyn`` command is parsed by the CLI's own parser;
* a Python script must exist and define every ``--option`` the command gives it; a ``-m`` module must be
  importable; ``-c`` code must compile.

Placeholders stay placeholders (``/path/to/file.nc``); an elided tail (``…``) is dropped, and a bare mention
(``python -m equidyn.cli …``) is not a command.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
ELISIONS = {"…", "...", "…)"}
STARTS = ("snakemake", "equidyn", "python")


def _code_texts(markdown: str) -> list[str]:
    """The code of a markdown text: lines of fenced blocks and of indented blocks (after a blank line), with their
    ``\\`` continuations joined, and the code spans of every paragraph (a span may wrap onto the next line)."""
    texts: list[str] = []
    block: list[str] = []
    prose: list[str] = []
    fenced = indented = False
    previous = ""
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif fenced or (line.startswith("    ") and (indented or not previous.strip())):
            indented = not fenced
            block.append(line.strip())
        else:
            indented = indented and not line.strip()
            prose.append(line)
        previous = line
    texts.extend("\n".join(block).replace("\\\n", " ").splitlines())
    for paragraph in re.split(r"\n\s*\n", "\n".join(prose)):
        texts.extend(re.findall(r"`([^`]+)`", paragraph.replace("\n", " ")))
    return texts


def _commands(text: str) -> list[list[str]]:
    """The commands of one code text: split at ``&&``, ``;`` and ``|``, comments dropped, elisions dropped."""
    commands = []
    for part in re.split(r"&&|;|\|(?!\|)", text):
        part = re.sub(r"\s#\s.*$", "", part).strip()
        if not part.startswith(STARTS):
            continue
        try:
            argv = shlex.split(part)
        except ValueError:
            continue  # not a complete command (an unbalanced quote in prose)
        # an elided tail is dropped; a shell variable (a loop's ``$l``) stands for a value such as 0
        argv = [re.sub(r"\$\{?\w+\}?", "0", a) for a in argv if a not in ELISIONS]
        if len(argv) > 1 and argv[0] in STARTS:  # a bare name ("the `python` that runs Snakemake") is no command
            commands.append(argv)
    return commands


def documented_commands() -> list[tuple[str, list[str]]]:
    found = []
    for doc in DOCS:
        for text in _code_texts(doc.read_text()):
            for argv in _commands(text):
                found.append((doc.relative_to(ROOT).as_posix(), argv))
    return found


def rule_names() -> set[str]:
    """The workflow's rule names: every ``rule NAME:`` (also one indented under an ``if``, as the exponax rules are)
    and every rule named in a loop (``name: f"figure_…"``)."""
    names = set()
    for path in [ROOT / "Snakefile", *(ROOT / "rules").glob("*.smk")]:
        names |= set(re.findall(r"^[ \t]*rule (\w+):", path.read_text(), re.M))
    return names


def check_snakemake(argv: list[str]) -> None:
    from snakemake.cli import get_argument_parser, parse_config

    try:
        args = get_argument_parser().parse_args(argv[1:])
    except SystemExit as err:
        raise AssertionError("Snakemake's parser rejects it") from err
    if args.config:
        parse_config(args.config)  # raises "Unparsable value" for a target given after --config
    for path in args.configfile or []:
        assert (ROOT / path).is_file(), f"--configfile {path}: no such file (a target after --configfile?)"
    for profile in args.profile or []:
        assert (ROOT / profile / "config.yaml").is_file(), f"--profile {profile}: no such profile"
    rules = rule_names()
    for target in args.targets:
        assert target in rules or target.startswith("results/"), f"target {target!r} is neither a rule nor a result"


def check_equidyn(argv: list[str]) -> None:
    from equidyn.cli import build_parser

    if len(argv) < 2:
        return  # a bare mention of the CLI ("a fresh `python -m equidyn.cli …` process")
    # ``@file`` (the user's own settings file) is read by argparse itself: a placeholder stands in for it
    args = ["{}" if a.startswith("@") else a for a in argv[1:]]
    try:
        build_parser().parse_args(args)
    except SystemExit as err:
        raise AssertionError("equidyn's parser rejects it") from err


def check_python(argv: list[str]) -> None:
    if argv[1:3] == ["-m", "equidyn.cli"]:
        check_equidyn(["equidyn", *argv[3:]])
    elif argv[1] == "-m":
        assert importlib.util.find_spec(argv[2]) is not None, f"no module {argv[2]}"
    elif argv[1] == "-c":
        compile(argv[2], "<command>", "exec")
    else:
        script = ROOT / argv[1]
        assert script.is_file(), f"no script {argv[1]}"
        source = script.read_text()
        for option in (a.split("=")[0] for a in argv[2:] if a.startswith("--")):
            assert f'"{option}"' in source, f"{argv[1]} has no option {option}"


def check(argv: list[str]) -> None:
    {"snakemake": check_snakemake, "equidyn": check_equidyn, "python": check_python}[argv[0]](argv)


COMMANDS = documented_commands()


def test_the_docs_show_commands_of_every_kind() -> None:
    """The extraction finds what the docs show (a broken extraction would pass every check below vacuously)."""
    kinds = {argv[0] for _, argv in COMMANDS}
    assert kinds == set(STARTS) and len(COMMANDS) > 40
    assert any(argv[1:3] == ["-m", "equidyn.cli"] for _, argv in COMMANDS if argv[0] == "python")


@pytest.mark.parametrize(("doc", "argv"), COMMANDS, ids=[f"{d}:{' '.join(a)[:60]}" for d, a in COMMANDS])
def test_a_documented_command_parses(doc: str, argv: list[str]) -> None:
    check(argv)


@pytest.mark.parametrize(
    "command",
    [
        "snakemake --profile profiles/local --config tutorial_data=/path/to/file.nc tutorial_all",
        "snakemake --profile profiles/local --configfile config/laptop.yaml all",
        "snakemake --cores 2 --set-threads tutorial_train=1 tutorial_all",
        "snakemake --profile profiles/local no_such_rule",
        "snakemake --profile profiles/nowhere all",
        "equidyn no-such-command",
        "python -m equidyn.cli levels-train --no-such-option 1",
        "python benchmarks/bench_demo.py --no-such-option",
        "python benchmarks/no_such_script.py",
    ],
)
def test_the_check_rejects_a_broken_command(command: str) -> None:
    """What the checks catch, among them the docs' old ``--config tutorial_data=… tutorial_all``."""
    (argv,) = _commands(command)
    with pytest.raises((AssertionError, ValueError)):
        check(argv)


def test_the_cli_help_lists_every_command_and_each_commands_help_renders() -> None:
    """``equidyn --help`` (and each subcommand's) must render: argparse %-formats help strings, and prose like
    "95% CI" or "20% of epochs" in a command's help once made every ``--help`` raise TypeError."""
    import contextlib
    import io

    from equidyn.cli import COMMANDS, build_parser

    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as done:
        build_parser().parse_args(["--help"])
    assert done.value.code == 0 and all(name in out.getvalue() for name in COMMANDS)
    assert "95% CI" in out.getvalue()
    for name in COMMANDS:
        with contextlib.redirect_stdout(io.StringIO()), pytest.raises(SystemExit) as done:
            build_parser().parse_args([name, "--help"])
        assert done.value.code == 0, name
