"""Supply chain (issues #16 §5, #21 §8): `make run`, `make test` and the image install exactly the locked
versions, each checked against its hashes; a dependency added to pyproject.toml without `make lock` fails here."""

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)")


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared(*extras: str) -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = list(project["dependencies"])
    for extra in extras:
        wanted += project["optional-dependencies"][extra]
    return {_normal(NAME.match(d).group(1)) for d in wanted}  # type: ignore[union-attr]


def _locked(file: str) -> dict[str, list[str]]:
    """Each pinned package with the hashes that follow it."""
    pins: dict[str, list[str]] = {}
    current = ""
    for line in (ROOT / file).read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==\S+", line):
            current = _normal(match.group(1))
            pins[current] = []
        elif "--hash=sha256:" in line and current:
            pins[current].append(line.strip())
    return pins


@pytest.mark.parametrize(("file", "extras"), [("requirements.lock", ("s3", "oidc")),
                                              ("requirements-test.lock", ("test", "dev", "s3", "oidc"))])
def test_every_declared_dependency_is_locked_with_its_hashes(file, extras):
    locked = _locked(file)
    assert _declared(*extras) <= set(locked), "run `make lock` after changing pyproject.toml's dependencies"
    assert all(locked.values()), [name for name, hashes in locked.items() if not hashes]


def test_make_and_the_image_install_from_the_locks_with_hashes_required():
    makefile = (ROOT / "Makefile").read_text()
    assert "--require-hashes -r requirements-test.lock" in makefile
    assert "--require-hashes --wheel-dir /wheels -r requirements.lock" in (ROOT / "deploy" / "Dockerfile").read_text()
    assert set(_locked("requirements.lock")) <= set(_locked("requirements-test.lock"))


def test_the_image_lock_holds_nothing_only_development_needs():
    """Issue #16 §5: the embedded broker and database, supervisord and the mail catcher are for `make run` and
    the tests; the production image is built from requirements.lock without them."""
    assert _declared("dev") - _declared() and not (_declared("dev") - _declared()) & set(_locked("requirements.lock"))
    assert "tessera[s3,oidc]" in (ROOT / "deploy" / "Dockerfile").read_text()
