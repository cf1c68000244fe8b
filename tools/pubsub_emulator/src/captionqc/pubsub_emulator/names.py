"""Resource-name parsing with the rules the real service enforces (INVALID_ARGUMENT otherwise)."""

from __future__ import annotations

import re

from captionqc.pubsub_emulator.errors import invalid

# Pub/Sub's documented id rule: starts with a letter, 3..255 chars of [A-Za-z0-9-_.~+%], never "goog…".
_RESOURCE_ID = re.compile(r"[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}")
# Project ids are not validated beyond shape: tests isolate themselves with arbitrary ids.
_PROJECT = re.compile(r"[A-Za-z0-9\-_.:~]{1,100}")


def _parse(name: str, kind: str) -> tuple[str, str]:
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != "projects" or parts[2] != kind:
        raise invalid(f"Invalid resource name given (name={name}).")
    project, resource = parts[1], parts[3]
    if not _PROJECT.fullmatch(project):
        raise invalid(f"Invalid project id in resource name (name={name}).")
    if not _RESOURCE_ID.fullmatch(resource) or resource.lower().startswith("goog"):
        raise invalid(f"Invalid resource name given (name={name}).")
    return project, resource


def parse_topic(name: str) -> tuple[str, str]:
    """Split `projects/P/topics/T` into (P, T)."""
    return _parse(name, "topics")


def parse_subscription(name: str) -> tuple[str, str]:
    """Split `projects/P/subscriptions/S` into (P, S)."""
    return _parse(name, "subscriptions")


def parse_project(name: str) -> str:
    """Accept `projects/P` and return P."""
    parts = name.split("/")
    if len(parts) != 2 or parts[0] != "projects" or not _PROJECT.fullmatch(parts[1]):
        raise invalid(f"Invalid project name given (name={name}).")
    return parts[1]


def project_of(name: str) -> str:
    """The project id of any well-formed resource name, without validation."""
    parts = name.split("/")
    return parts[1] if len(parts) > 1 else ""
