"""What pyproject.toml promises a user's project: the extras the README's table and the
install hints name, and the metadata ``pip show`` reads."""
from __future__ import annotations

import tomllib
from pathlib import Path

from gradcheck import heatmap

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
EXTRAS = PROJECT["optional-dependencies"]


def _names(requirements: list[str]) -> set[str]:
    return {r.split(">")[0].split("=")[0].split("<")[0].strip() for r in requirements}


def test_the_extras_hold_what_the_install_hints_and_the_readme_name() -> None:
    assert _names(EXTRAS["test"]) == {"pytest", "hypothesis", "pytest-benchmark"}
    assert _names(EXTRAS["plot"]) == {"matplotlib"}
    assert _names(EXTRAS["parallel"]) == {"threadpoolctl"}  # executor='s thread limit
    assert "pip install matplotlib (gradcheck's plot extra)" in heatmap.INSTALL_HINT
    readme = (ROOT / "README.md").read_text()
    rows = {line.split("|")[1].strip(" `"): line.split("|")[2]
            for line in readme.splitlines() if line.startswith("| `")}
    for extra, requirements in EXTRAS.items():  # the table of "Use it in your project"
        assert set(rows[extra].replace(",", " ").split()) == _names(requirements), extra


def test_metadata_for_pip_show() -> None:
    assert PROJECT["license"] == "MIT" and PROJECT["license-files"] == ["LICENSE"]
    assert "gradient check" in PROJECT["keywords"]
    assert {"Framework :: Pytest", "Typing :: Typed",
            "Topic :: Software Development :: Testing"} <= set(PROJECT["classifiers"])
    assert PROJECT["entry-points"]["pytest11"] == {"gradcheck": "gradcheck.plugin"}
    assert PROJECT["scripts"] == {"gradcheck": "gradcheck.cli:main"}
