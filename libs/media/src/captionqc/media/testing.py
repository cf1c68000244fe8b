"""Test support for the media stages: media with a stream no decoder knows; the Cloud Run Job mode's settings, and
the one outside service it fakes.

Only the Cloud Run admin API is faked: Cloud Run cannot run here. Everything of ours runs for real in tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal, TypeVar

from captionqc.media.settings import ExecutionMode, MediaStageSettings

SettingsT = TypeVar("SettingsT", bound=MediaStageSettings)

# An MP4 names each stream's codec by the type of its sample entry (ISO/IEC 14496-12 ``stsd``); AAC is also named
# by its ``esds`` descriptor, from which FFmpeg would still recognise it.
_CODEC_BOXES = {"video": (b"avc1",), "audio": (b"mp4a", b"esds")}
_UNKNOWN = b"qcxx"


def with_undecodable_stream(clip: Path, kind: Literal["audio", "video"], dest: Path) -> Path:
    """Copy an H.264/AAC MP4 to ``dest`` with the ``kind`` stream's codec renamed to one no FFmpeg knows.

    The file stays well-formed and its other stream decodes as before: the real case of a broadcast file with one
    stream in a codec the service's FFmpeg build lacks.
    """
    data = bytearray(clip.read_bytes())
    entry, *descriptors = _CODEC_BOXES[kind]
    at = data.find(b"stsd")
    renamed = False
    while at >= 0:
        # stsd: type, version/flags (4), entry count (4), then the first entry's size (4) and type.
        if data[at + 16 : at + 20] == entry:
            data[at + 16 : at + 20] = _UNKNOWN
            for box in descriptors:
                inner = data.find(box, at + 20)
                if inner < 0:
                    raise ValueError(f"{clip.name}: no {box.decode()} box in its {kind} sample entry")
                data[inner : inner + 4] = _UNKNOWN
            renamed = True
        at = data.find(b"stsd", at + 4)
    if not renamed:
        raise ValueError(f"{clip.name} has no {entry.decode()} {kind} stream to rename")
    dest.write_bytes(bytes(data))
    return dest


def cloud_run_job_settings(settings_class: type[SettingsT], results: Path, *, job_name: str) -> SettingsT:
    """A stage's settings in ``cloud_run_job`` mode, with its results (and stored jobs) under ``results``."""
    return settings_class(
        execution_mode=ExecutionMode.CLOUD_RUN_JOB,
        cloud_run_job_name=job_name,
        cloud_run_region="europe-west1",
        gcp_project="captionqc-prod",
        results_uri=str(results),
    )


@dataclass
class FakeJobsClient:
    """Records `run_job` requests as the Cloud Run admin API would receive them; ``fail`` is raised instead."""

    fail: Exception | None = None
    requests: list[Any] = field(default_factory=list)

    def run_job(self, request: Any) -> SimpleNamespace:
        if self.fail is not None:
            raise self.fail
        self.requests.append(request)
        # A long-running operation whose metadata names the started execution.
        return SimpleNamespace(metadata=SimpleNamespace(name=f"{request.name}/executions/{len(self.requests)}"))


def tenant_folder(media_root: Path, tenant: str = "acme", *, linked_to: Path | None = None) -> Path:
    """``<media_root>/<tenant>``, the only folder a tenant's ``file://`` media may be in: a new folder, or a symlink
    to ``linked_to`` (e.g. the committed samples, read in place)."""
    folder = media_root / tenant
    media_root.mkdir(parents=True, exist_ok=True)
    if linked_to is None:
        folder.mkdir()
    else:
        folder.symlink_to(linked_to.resolve(), target_is_directory=True)
    return folder
