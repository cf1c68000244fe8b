"""The service images install exactly what each service needs, from the pinned lock, and run as production runs.

Each image installs `infra/docker/requirements/<service>.txt` (its slice of the lock, written by
`infra/docker/export-requirements.sh`) with `--require-hashes --no-deps`, so a slice that misses a dependency
or drifts from `requirements.lock.txt` would only show when the image starts. These tests catch both here,
from the installed distributions' metadata, without building anything.
"""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
SERVICES = ["gateway", "status", "ocr", "asr", "crosscheck"]
HTTP_SERVICES = {"gateway", "status"}
MEMBERS = {
    "captionqc-schemas": "libs/schemas",
    "captionqc-runtime": "libs/runtime",
    "captionqc-media": "libs/media",
}

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")
_HASH = re.compile(r"--hash=(sha256:[0-9a-f]{64})")


def _pins(path: Path) -> dict[str, tuple[str, frozenset[str]]]:
    """name -> (version, hashes) of a hash-pinned requirements file."""
    pins: dict[str, tuple[str, frozenset[str]]] = {}
    name = ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if match := _PIN.match(line):
            name = canonicalize_name(match[1])
            pins[name] = (match[2], frozenset())
        elif (found := _HASH.search(line)) and name:
            version, hashes = pins[name]
            pins[name] = (version, hashes | {found[1]})
    return pins


def _closure(distribution: str) -> tuple[set[str], set[str]]:
    """Third-party distributions and workspace members that `distribution` needs at run time (no extras)."""
    third_party: set[str] = set()
    members: set[str] = set()
    pending: list[tuple[str, frozenset[str]]] = [(distribution, frozenset())]
    seen: set[tuple[str, frozenset[str]]] = set()
    while pending:
        name, extras = pending.pop()
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        for text in metadata.requires(name) or []:
            requirement = Requirement(text)
            wanted = requirement.marker is None or any(
                requirement.marker.evaluate({"extra": extra}) for extra in {"", *extras}
            )
            if not wanted:
                continue
            dependency = canonicalize_name(requirement.name)
            if dependency.startswith("captionqc-"):
                members.add(dependency)
            else:
                third_party.add(dependency)
            pending.append((dependency, frozenset(requirement.extras)))
    return third_party, members


@pytest.mark.parametrize("service", SERVICES)
def test_requirements_slice_matches_the_lock(service: str) -> None:
    lock = _pins(ROOT / "requirements.lock.txt")
    image = _pins(ROOT / "infra" / "docker" / "requirements" / f"{service}.txt")
    assert image, "empty slice"
    drifted = {name: pin for name, pin in image.items() if lock.get(name) != pin}
    assert not drifted, f"re-run infra/docker/export-requirements.sh: {sorted(drifted)} differ from the lock"


@pytest.mark.parametrize("service", SERVICES)
def test_requirements_slice_holds_every_runtime_dependency(service: str) -> None:
    needed, _ = _closure(f"captionqc-{service}")
    image = set(_pins(ROOT / "infra" / "docker" / "requirements" / f"{service}.txt"))
    assert needed - image == set(), "re-run infra/docker/export-requirements.sh"


@pytest.mark.parametrize("service", SERVICES)
def test_dockerfile_installs_the_members_the_service_imports(service: str) -> None:
    dockerfile = (ROOT / "services" / service / "Dockerfile").read_text(encoding="utf-8")
    _, members = _closure(f"captionqc-{service}")
    expected = sorted([*(MEMBERS[m] for m in members), f"services/{service}"])
    copied = sorted(re.findall(r"^COPY (libs/\w+|services/\w+)/ ", dockerfile, flags=re.MULTILINE))
    assert copied == expected
    assert f"COPY infra/docker/requirements/{service}.txt " in dockerfile
    assert "--require-hashes --no-deps -r requirements.txt" in dockerfile


@pytest.mark.parametrize("service", SERVICES)
def test_dockerfile_runs_the_service_as_production_does(service: str) -> None:
    dockerfile = (ROOT / "services" / service / "Dockerfile").read_text(encoding="utf-8")
    final_stage = dockerfile.rsplit("\nFROM ", 1)[1]
    assert re.search(r"^USER 10001", final_stage, flags=re.MULTILINE), "the final stage must not run as root"
    assert "/opt/build" not in final_stage.split("COPY --from=builder /opt/venv /opt/venv")[0]
    cmd = re.findall(r"^CMD (.+)$", final_stage, flags=re.MULTILINE)
    assert len(cmd) == 1
    if service in HTTP_SERVICES:
        assert f"gunicorn 'captionqc.{service}.app:create_app()'" in cmd[0]
        assert "--bind 0.0.0.0:${PORT:-8080}" in cmd[0]
        assert "--graceful-timeout" in cmd[0]
    else:
        # The consumer runner binds its health server to PORT itself; it must listen beyond loopback.
        assert cmd[0] == f'["python", "-m", "captionqc.{service}"]'
        assert f"CAPTIONQC_{service.upper()}_HEALTH_HOST=0.0.0.0" in final_stage
