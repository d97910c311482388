"""Repository-wide checks: project layout, presets, documented make targets, shared stays shared."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest

from paperlab.shared.config import load_config

ROOT = Path(__file__).resolve().parents[1]
PROJECTS = sorted(p for p in (ROOT / "projects").iterdir() if (p / "pyproject.toml").exists())


def test_there_is_at_least_one_project():
    assert PROJECTS, "no project under projects/"


@pytest.mark.parametrize("project", PROJECTS, ids=lambda p: p.name)
def test_project_layout(project):
    for name in ("README.md", "REPORT.md", "pyproject.toml"):
        assert (project / name).is_file(), f"{project.name} has no {name}"
    meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    assert meta["name"] == f"paperlab-{project.name}"
    assert "paperlab-shared" in meta["dependencies"]
    pkg = project / "src" / "paperlab" / project.name
    assert (pkg / "__init__.py").is_file(), f"import paperlab.{project.name} lives in {pkg}"
    # PEP 420 namespace: no __init__.py at the paperlab/ level, or projects would shadow each other
    assert not (project / "src" / "paperlab" / "__init__.py").exists()
    assert list((project / "tests").glob("test_*.py")), f"{project.name} has no tests"


def test_shared_is_a_namespace_package_too():
    assert not (ROOT / "shared" / "src" / "paperlab" / "__init__.py").exists()


def test_shared_imports_no_project():
    for path in (ROOT / "shared" / "src").rglob("*.py"):
        for line in path.read_text().splitlines():
            m = re.match(r"\s*(?:from|import)\s+paperlab\.(\w+)", line)
            assert m is None or m.group(1) == "shared", f"{path} imports a project: {line.strip()}"


def _config_schemas() -> dict[str, type]:
    eps = importlib.metadata.entry_points(group="paperlab.configs")
    return {ep.name: ep.load() for ep in eps}


PRESETS = sorted((ROOT / "configs").glob("*/*.yaml"))


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_preset_loads_into_its_projects_config(preset):
    schemas = _config_schemas()
    project = preset.parent.name
    assert project in schemas, (f"configs/{project}/ has no config schema: add an entry point "
                                f"[project.entry-points.\"paperlab.configs\"] {project} = ...")
    cfg = load_config(schemas[project], preset)
    assert type(cfg) is schemas[project]


def test_every_project_with_presets_has_a_config_folder_entry():
    for folder in (ROOT / "configs").iterdir():
        assert (ROOT / "projects" / folder.name).is_dir(), f"configs/{folder.name} matches no project"


def _make_targets() -> set[str]:
    text = "\n".join(p.read_text() for p in [ROOT / "Makefile", *sorted(ROOT.glob("projects/*/project.mk"))])
    return set(re.findall(r"^([a-zA-Z][\w-]*)\s*:(?!=)", text, re.M))


def test_make_targets_named_in_readmes_exist():
    targets = _make_targets()
    readmes = [ROOT / "README.md", ROOT / "REPORT.md"] + [p / "README.md" for p in PROJECTS]
    missing = []
    for readme in readmes:
        # commands: a line of a code block that starts with make, or inline code `make ...`
        for name in re.findall(r"(?:^|`)\s*make\s+([a-z][\w-]*\w)", readme.read_text(), re.M):
            if name not in targets:
                missing.append(f"{readme.relative_to(ROOT)}: make {name}")
    assert not missing, "README names make targets that do not exist:\n" + "\n".join(missing)
    assert {"test", "setup", "lint", "train-dqn"} <= targets
