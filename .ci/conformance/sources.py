"""Fetches the released source of an SDK and says where its test suite is.

    python sources.py DIST VERSION WORKDIR [GITHUB_REPO]

Prints the directory of the extracted release. The sdist comes from PyPI through pip; when pip
cannot download it (it builds metadata first, which fails for some sdists, such as google-genai's),
from PyPI's JSON simple index (PEP 691), checked against the index's sha256. When the sdist holds
no tests, the GitHub tag tarball of GITHUB_REPO is used instead.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tarfile
import urllib.request
from pathlib import Path

INDEX = "https://pypi.org/simple"


def _normalized(dist: str) -> str:
    return dist.lower().replace("_", "-").replace(".", "-")


def _sdist_names(dist: str, version: str) -> set[str]:
    stem = dist.replace("-", "_")
    return {f"{name}-{version}.tar.gz" for name in (dist, stem, stem.lower(), dist.lower())}


def _with_pip(dist: str, version: str, work: Path) -> Path | None:
    command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:"]
    done = subprocess.run([*command, f"{dist}=={version}", "-d", str(work)], capture_output=True, text=True)
    if done.returncode != 0:
        return None
    found = [work / name for name in _sdist_names(dist, version) if (work / name).exists()]
    return found[0] if found else None


def _from_index(dist: str, version: str, work: Path) -> Path:
    request = urllib.request.Request(
        f"{INDEX}/{_normalized(dist)}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"}
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        files = json.load(response)["files"]
    names = _sdist_names(dist, version)
    for entry in files:
        if entry["filename"] in names:
            target = work / entry["filename"]
            with urllib.request.urlopen(entry["url"], timeout=300) as response:
                data = response.read()
            if hashlib.sha256(data).hexdigest() != entry["hashes"]["sha256"]:
                raise SystemExit(f"sources: {entry['filename']} does not match the index's sha256")
            target.write_bytes(data)
            return target
    raise SystemExit(f"sources: PyPI has no sdist of {dist} {version}")


def _extract(archive: Path, work: Path) -> Path:
    with tarfile.open(archive) as tar:
        top = tar.getnames()[0].split("/")[0]
        if hasattr(tarfile, "data_filter"):
            tar.extractall(work, filter="data")
        else:  # a Python without extraction filters (before 3.10.12)
            tar.extractall(work)
    return work / top


def _has_tests(tree: Path) -> bool:
    return any(path.name.startswith("test_") for path in tree.rglob("test_*.py"))


def _from_github(repo: str, version: str, work: Path) -> Path:
    url = f"https://github.com/{repo}/archive/refs/tags/v{version}.tar.gz"
    target = work / f"{repo.replace('/', '-')}-v{version}.tar.gz"
    try:
        with urllib.request.urlopen(url, timeout=120) as response:
            target.write_bytes(response.read())
    except OSError as error:
        raise SystemExit(f"sources: the sdist has no tests and {url} is unreachable: {error}") from error
    return _extract(target, work)


def fetch(dist: str, version: str, work: Path, github_repo: str | None = None) -> Path:
    """The extracted release of `dist` `version` that holds its tests (reused when already there)."""
    work.mkdir(parents=True, exist_ok=True)
    archive = next((work / name for name in _sdist_names(dist, version) if (work / name).exists()), None)
    if archive is None:
        archive = _with_pip(dist, version, work) or _from_index(dist, version, work)
    tree = _extract(archive, work)
    if _has_tests(tree):
        return tree
    if github_repo:
        return _from_github(github_repo, version, work)
    raise SystemExit(f"sources: the sdist of {dist} {version} ships no tests")


if __name__ == "__main__":
    arguments = sys.argv[1:]
    if len(arguments) not in (3, 4):
        raise SystemExit(__doc__)
    print(fetch(arguments[0], arguments[1], Path(arguments[2]), arguments[3] if len(arguments) == 4 else None))
