"""One version number, a changelog that names it, pre-commit hooks that are `make lint`, Node pinned for osls.

GIVEN the project's files, THEN the version in pyproject.toml is the one the installed package, openapi.json and
CHANGELOG.md carry (the layer's description reads it too: serverless.yml -> infra/project-version.js, checked
in the packaged template by `make package`); the pre-commit hooks run exactly `make lint`'s commands; and npm
refuses a Node that osls does not support.
"""

from __future__ import annotations

import json
import re
import tomllib
from importlib.metadata import version
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def project_version() -> str:
    found: str = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    return found


def test_one_version_number_everywhere() -> None:
    expected = project_version()
    changelog = (ROOT / "CHANGELOG.md").read_text()
    released = re.findall(r"^## (\d+\.\d+\.\d+)\s*$", changelog, re.MULTILINE)

    assert version("video-library") == expected, "the venv is stale: make venv"
    assert json.loads((ROOT / "openapi.json").read_text())["info"]["version"] == expected
    assert released[0] == expected, "CHANGELOG.md's newest release is not pyproject.toml's version"
    assert "## Unreleased" in changelog.split(f"## {expected}")[0], "CHANGELOG.md keeps an Unreleased section on top"


def test_the_layer_description_takes_the_version_from_pyproject() -> None:
    serverless = (ROOT / "serverless.yml").read_text()
    script = (ROOT / "infra" / "project-version.js").read_text()

    assert "description: video_library ${file(./infra/project-version.js):version} and its" in serverless
    # The script's pattern (a JavaScript regex) finds exactly pyproject.toml's version line.
    pattern = re.search(r"pyproject\.match\(/(.+)/m\)", script)
    assert pattern is not None
    found = re.search(pattern.group(1).replace("\\s", r"\s"), (ROOT / "pyproject.toml").read_text(), re.MULTILINE)
    assert found is not None and found.group(1) == project_version()


def lint_commands() -> list[str]:
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^lint:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert recipe is not None
    return [line.strip().replace("$(BIN)/", ".venv/bin/") for line in recipe.group(1).splitlines()]


def test_the_pre_commit_hooks_are_make_lint() -> None:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text())
    hooks = [hook for repo in config["repos"] for hook in repo["hooks"]]

    # Each hook is a lint command; ruff gets the changed files instead of ".", mypy its packages as a whole.
    entries = [hook["entry"] + ("" if hook.get("pass_filenames") is False else " .") for hook in hooks]
    assert entries == lint_commands()
    assert all(hook["language"] == "system" for hook in hooks), "the hooks use .venv's tools, as make lint does"


def test_node_is_pinned_for_osls() -> None:
    engines = json.loads((ROOT / "package.json").read_text())["engines"]["node"]
    lock = json.loads((ROOT / "package-lock.json").read_text())

    # the pin is osls's own range (as the lock file records it), enforced by npm, and stated in the README
    assert (
        engines == lock["packages"]["node_modules/osls"]["engines"]["node"] == lock["packages"][""]["engines"]["node"]
    )
    assert "engine-strict=true" in (ROOT / ".npmrc").read_text().splitlines()
    assert f"it needs Node `{engines}`" in (ROOT / "README.md").read_text()
