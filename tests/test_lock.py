"""The environment is locked: `uv.lock` and `constraints.txt` match `pyproject.toml`, they name
the package registry only, and the README's commands are the ones CI and users run."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from uv import find_uv_bin

ROOT = Path(__file__).resolve().parents[1]
LOCK_FILES = ("pyproject.toml", "uv.lock", "constraints.txt", "README.md", ".python-version", "scripts/lock.sh")


def check(root: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(find_uv_bin()).parent}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(["bash", str(root / "scripts" / "lock.sh"), "--check"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


def test_lock_and_constraints_match_pyproject():
    r = check(ROOT)
    assert r.returncode == 0, r.stderr


def test_check_fails_and_names_the_fix_when_pyproject_changes(tmp_path):
    for name in LOCK_FILES:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    assert check(tmp_path).returncode == 0  # the copy itself is up to date
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"pyyaml>=6"', '"pyyaml>=6,!=6.0.0"'))
    r = check(tmp_path)
    assert r.returncode == 1
    assert "run scripts/lock.sh" in r.stderr


def test_lock_names_only_the_package_registry():
    lock = (ROOT / "uv.lock").read_text()
    hosts = set(re.findall(r'url = "(https?://[^/"]+)', lock)) | set(re.findall(r'registry = "(https?://[^/"]+)', lock))
    assert hosts == {"https://files.pythonhosted.org", "https://pypi.org"}, hosts
    assert not re.search(r"\b(git|path|editable|directory) = ", lock.replace('editable = "."', ""))
    assert re.search(r'name = "torch"\nversion = "2\.14\.1"\nsource = \{ registry = "https://pypi.org/simple" \}', lock)


def test_readme_test_command_is_what_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text()
    install = re.search(r'^INSTALL="(.+)"$', ci, re.M).group(1)
    test = re.search(r'^TEST="(.+)"$', ci, re.M).group(1)
    readme = (ROOT / "README.md").read_text()
    assert f"{install} && {test}" in readme
    assert "UV_CACHE_DIR" in ci and "mktemp" in ci
