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
    assert project in schemas, (
        f"configs/{project}/ has no config schema: add an entry point "
        f'[project.entry-points."paperlab.configs"] {project} = ...'
    )
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


# ------------------------------------------------------------------ the contract (PROJECT.md)
SHARED_SRC = ROOT / "shared" / "src" / "paperlab" / "shared"


def _sources(project: Path) -> list[Path]:
    return sorted((project / "src").rglob("*.py"))


def _nonblank_lines(path: Path) -> int:
    return sum(1 for line in path.read_text().splitlines() if line.strip())


@pytest.mark.parametrize("module", sorted(SHARED_SRC.glob("*.py")), ids=lambda p: p.name)
def test_shared_helpers_stay_small(module):
    if module.name == "torchvision_compat.py":  # the repair, not a helper
        return
    assert _nonblank_lines(module) < 140, f"{module.name} is growing: shared/ holds small utilities only"


def _imports(path: Path, package: str) -> set[str]:
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith(package + "."):
            found.add(node.module.split(".")[2])
            if node.module == package:  # from paperlab.x import y
                found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module == package:
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[2] for a in node.names if a.name.startswith(package + "."))
    return found


@pytest.mark.parametrize("project", PROJECTS, ids=lambda p: p.name)
def test_imports_flow_one_way(project):
    """No import cycles inside a project, and evaluation never imports training."""
    package = f"paperlab.{project.name}"
    graph = {p.stem: _imports(p, package) - {p.stem} for p in _sources(project) if p.stem != "__init__"}
    for module in ("evaluate", "render", "sample", "report"):
        assert "train" not in graph.get(module, set()), f"{package}.{module} imports train"

    def reach(start, node, seen):
        for nxt in graph.get(node, ()):
            if nxt == start:
                return True
            if nxt not in seen:
                seen.add(nxt)
                if reach(start, nxt, seen):
                    return True
        return False

    cycles = [m for m in graph if reach(m, m, set())]
    assert not cycles, f"{package}: modules in an import cycle: {', '.join(sorted(cycles))}"


@pytest.mark.parametrize("project", PROJECTS, ids=lambda p: p.name)
def test_commands_go_through_the_shared_cli(project):
    """Every module with a main() runs it through paperlab.shared.cli.run_command."""
    missing = [
        p.name
        for p in _sources(project)
        if re.search(r"^def main\(", p.read_text(), re.M) and "run_command(" not in p.read_text()
    ]
    assert not missing, f"{project.name}: main() without run_command in {', '.join(missing)}"


@pytest.mark.parametrize("project", PROJECTS, ids=lambda p: p.name)
def test_no_local_copies_of_shared_helpers(project):
    patterns = {
        r"^def replace_block\(": "paperlab.shared.report.replace_block",
        r"os\.replace\(": "paperlab.shared.checkpoint.atomic_save / atomic_path",
        r"signal\.signal\(": "paperlab.shared.cli.StopSignal",
        r"class \w+\((?:Arithmetic|FloatingPoint|Runtime)Error\)": "FloatingPointError via check_finite",
        r"^def _?(?:read|write)_idx\(": "paperlab.shared.idx.read_idx / write_idx",
    }
    found = [
        f"{p.relative_to(ROOT)}: {rx} (use {use})"
        for p in _sources(project)
        for rx, use in patterns.items()
        if re.search(rx, p.read_text(), re.M)
    ]
    assert not found, "\n".join(found)


def test_console_scripts_in_every_project_or_in_none():
    has = {p.name: "scripts" in tomllib.loads((p / "pyproject.toml").read_text())["project"] for p in PROJECTS}
    assert len(set(has.values())) == 1, f"console scripts in some projects only: {has}"


def test_every_train_target_can_resume():
    for mk in sorted(ROOT.glob("projects/*/project.mk")):
        for name, body in re.findall(r"^(train-[\w-]+):[^\n]*\n((?:\t[^\n]*\n?)+)", mk.read_text(), re.M):
            assert "$(RESUME_ARG)" in body, f"{mk.parent.name}: make {name} ignores RESUME=1"


def test_make_help_lists_targets_with_underscores():
    import subprocess

    out = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    documented = {
        m
        for m in re.findall(
            r"^([a-zA-Z][\w-]*)\s*:[^=\n]*## ",
            "\n".join(p.read_text() for p in [ROOT / "Makefile", *ROOT.glob("projects/*/project.mk")]),
            re.M,
        )
    }
    listed = {line.split("\t")[0] for line in out.splitlines()}
    assert documented <= listed, f"make help hides: {sorted(documented - listed)}"
    assert "RESUME=1" in out
