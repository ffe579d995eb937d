"""The package is self-contained: every subpackage ships, every module imports from the built package alone."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "equidyn"


def source_packages() -> set[str]:
    """Every directory of src/equidyn that holds Python modules, as a dotted package name."""
    dirs = {p.parent for p in SRC.rglob("*.py") if "__pycache__" not in p.parts}
    return {".".join(d.relative_to(ROOT / "src").parts) for d in dirs}


def test_every_directory_with_modules_is_a_discovered_package() -> None:
    from setuptools import find_packages

    missing_init = sorted(
        p for p in source_packages() if not (ROOT / "src" / p.replace(".", "/") / "__init__.py").exists()
    )
    assert not missing_init, f"no __init__.py (left out of the wheel): {missing_init}"
    assert set(find_packages(str(ROOT / "src"))) == source_packages()


def test_package_data_names_existing_files() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    for package, patterns in config.get("package-data", {}).items():
        base = ROOT / "src" / package.replace(".", "/")
        for pattern in patterns:
            assert list(base.glob(pattern)), f"package-data {package}: {pattern!r} matches nothing"


def test_the_built_package_holds_every_module_and_each_imports_from_it(tmp_path: Path) -> None:
    """Build the wheel from a clean copy (what a fresh clone has), then import every module from it alone.

    ``pip wheel --no-build-isolation`` uses the environment's setuptools and ``wheel`` (both in the lock), so the
    build needs no network; the wheel is unpacked and put first on the path of a fresh interpreter.
    """
    import zipfile

    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, project / name)
    shutil.copytree(SRC, project / "src" / "equidyn", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    dist = tmp_path / "dist"
    pip = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index", "-w"]
    build = subprocess.run([*pip, str(dist), str(project)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = dist.glob("equidyn-*.whl")
    lib = tmp_path / "lib"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(lib)
    built = {p.relative_to(lib).as_posix() for p in lib.rglob("*") if p.is_file()}
    source = {p.relative_to(ROOT / "src").as_posix() for p in SRC.rglob("*.py") if "__pycache__" not in p.parts}
    assert source <= built, f"left out of the package: {sorted(source - built)}"
    assert "equidyn/models/__init__.py" in built and "equidyn/py.typed" in built
    assert any(p.endswith(".dist-info/LICENSE") for p in built), "the wheel carries no LICENSE"

    code = (
        "import importlib, pkgutil, sys\n"
        f"sys.path.insert(0, {str(lib)!r})\n"
        "import equidyn\n"
        f"assert equidyn.__file__.startswith({str(lib)!r}), equidyn.__file__\n"
        "names = [m.name for m in pkgutil.walk_packages(equidyn.__path__, 'equidyn.')]\n"
        "for name in names:\n"
        "    module = importlib.import_module(name)\n"
        f"    assert module.__file__.startswith({str(lib)!r}), (name, module.__file__)\n"
        "print(len(names))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    assert int(out.stdout.split()[-1]) == len(source) - 1  # every module but equidyn/__init__ itself


def test_every_declared_model_is_registered_and_a_missing_module_is_an_error(monkeypatch) -> None:
    from equidyn.models import registry

    assert set(registry.available_models()) == set(registry.MODELS)
    monkeypatch.setitem(registry.MODELS, "ghost", registry.ModelInfo("equidyn.models.ghost", 2, False))
    with pytest.raises(ImportError, match=r"equidyn\.models\.ghost .* is missing"):
        registry.available_models()


def test_an_undeclared_or_misdeclared_model_cannot_register() -> None:
    from equidyn.models import registry

    with pytest.raises(ValueError, match="not declared"):
        registry.register("undeclared")(object)

    class Relaxed:
        has_regularizer = True

    with pytest.raises(ValueError, match="has_regularizer disagrees"):
        registry.register("convnet")(Relaxed)  # convnet is declared without a penalty


def test_citations_point_at_docs_references() -> None:
    """Every citation is a key of docs/references.md; nothing cites documents a user does not have."""
    refs = (ROOT / "docs" / "references.md").read_text()
    for key in ("W22", "W24", "BLOG", "TUT", "Snakemake", "Gruver23", "PyHessian", "JHTDB"):
        assert f"**[{key}]**" in refs, key
    stale = []
    for folder in ("src", "docs", "rules", "config", "workflow"):
        for path in (ROOT / folder).rglob("*"):
            if path.is_file() and path.suffix in {".py", ".md", ".smk", ".yaml", ".rst"}:
                text = path.read_text(errors="replace")
                stale += [f"{path.relative_to(ROOT)}" for marker in ("REFERENCE §", "(issue: ") if marker in text]
    readme = (ROOT / "README.md").read_text()
    stale += ["README.md" for marker in ("REFERENCE §", "(issue: ") if marker in readme]
    assert not stale, stale


def test_the_license_file_is_the_license_pyproject_states() -> None:
    """pyproject.toml says MIT; the repository's LICENSE is the MIT text with its copyright line."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == {"text": "MIT"}
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n\nCopyright (c) 2026 equidyn developers\n")
    assert "Permission is hereby granted, free of charge" in text and 'THE SOFTWARE IS PROVIDED "AS IS"' in text
