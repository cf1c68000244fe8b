"""Handing local files to the local stack's services, each tenant in its own media folder.

The services read ``file://`` media only under ``<media_root>/<tenant>/`` (the media URI policy), so a local file is
copied to ``<media_root>/<tenant>/uploads/<content hash>-<name>``: named by content, two tenants (or two files with
one name) never overwrite each other, and uploading the same file again reuses the copy. The bundled samples go to
``<media_root>/<tenant>/samples/`` for each tenant that uses them.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from pathlib import Path

from captionqc.runtime.tenants import check_tenant_name

REPO_ROOT = Path(__file__).resolve().parents[5]
SAMPLES = REPO_ROOT / "samples"
# The content hash in an upload's name: 64 bits tell apart any files one tenant will ever upload by the same name.
_HASH_CHARS = 16


def tenant_folder(media_root: Path, tenant: str) -> Path:
    """``<media_root>/<tenant>``: the one folder the services read ``tenant``'s ``file://`` media from."""
    return media_root / check_tenant_name(tenant)


def upload(media_root: Path, tenant: str, path: Path) -> Path:
    """The path the services may read ``path`` at for ``tenant``: itself if it is in the tenant's folder already,
    else its copy at ``<media_root>/<tenant>/uploads/<content hash>-<name>``."""
    folder = tenant_folder(media_root, tenant)
    source = path.resolve()
    if source.is_relative_to(folder.resolve()):
        return source
    target = folder / "uploads" / f"{_content_hash(source)[:_HASH_CHARS]}-{source.name}"
    _copy_once(source, target)
    return target.resolve()


def copy_samples(media_root: Path, tenant: str, samples: Path = SAMPLES) -> Path:
    """Copy the bundled sample clips to ``<media_root>/<tenant>/samples/`` (once); returns that folder."""
    target = tenant_folder(media_root, tenant) / "samples"
    for clip in sorted(samples.glob("*.mp4")):
        dest = target / clip.name
        if dest.exists() and dest.stat().st_size != clip.stat().st_size:
            dest.unlink()  # a sample rebuilt since it was copied
        _copy_once(clip, dest)
    return target


def _content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _copy_once(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` unless it is there; whole or not at all (a worker may open it at once)."""
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
    try:
        shutil.copyfile(source, partial)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


__all__ = ["SAMPLES", "copy_samples", "tenant_folder", "upload"]
