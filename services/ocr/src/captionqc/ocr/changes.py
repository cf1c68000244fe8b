"""Decide which sampled frames need OCR: only those where the caption may have changed.

A plain downscaled grayscale difference does not work on broadcast video: a moving background swamps it
(measured here, a within-caption difference of 44 against a real caption change as small as 12). Burned-in
captions are legible because they are bright strokes against a dark outline, shadow or box, so the detector
compares a small thumbnail of a *text mask* — bright pixels with a dark pixel close by — which a smooth moving
background hardly touches. A forced re-read every few seconds bounds the damage of any change the mask misses.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

# Luma thresholds (0..255): white and yellow text are both above BRIGHT (yellow is ~200); outlines, shadows
# and caption boxes — even half-transparent ones — are below DARK.
BRIGHT = 170
DARK = 60
# How near (in half-resolution pixels) a dark pixel must be for a bright one to count as a text stroke.
OUTLINE_RADIUS = 2
THUMB_W, THUMB_H = 64, 16


def text_mask_thumbnail(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
    """A THUMB_H × THUMB_W map (0..255) of how much of each cell is caption-like strokes."""
    # Half resolution is plenty for a mask compared at thumbnail size, and four times cheaper.
    small = image[::2, ::2].astype(np.float32)
    luma = small[..., 2] * 0.299 + small[..., 1] * 0.587 + small[..., 0] * 0.114
    bright = luma >= BRIGHT
    dark = luma <= DARK
    r = OUTLINE_RADIUS
    height, width = dark.shape
    padded = np.pad(dark, r)
    near_dark = np.zeros_like(dark)
    for dy in range(2 * r + 1):
        for dx in range(2 * r + 1):
            near_dark |= padded[dy : dy + height, dx : dx + width]
    mask = (bright & near_dark).astype(np.float32) * 255.0
    return _block_mean(mask, THUMB_H, THUMB_W)


def _mad(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float:
    return float(np.abs(a - b).mean())


def _block_mean(values: npt.NDArray[np.float32], rows: int, cols: int) -> npt.NDArray[np.float32]:
    height, width = values.shape
    if height < rows or width < cols:
        # A region smaller than the thumbnail: compare it as it is, padded to the thumbnail's shape.
        padded = np.zeros((rows, cols), dtype=np.float32)
        padded[: min(height, rows), : min(width, cols)] = values[:rows, :cols]
        return padded
    h, w = height // rows * rows, width // cols * cols
    blocks = values[:h, :w].reshape(rows, h // rows, cols, w // cols)
    out: npt.NDArray[np.float32] = blocks.mean(axis=(1, 3), dtype=np.float32)
    return out


@dataclass
class CaptionChangeDetector:
    """Says, frame by frame, whether to OCR: compares the mask with the previous sample and the last read."""

    threshold: float = 6.0
    forced_interval_s: float = 2.5
    _last_thumb: npt.NDArray[np.float32] | None = field(default=None, init=False, repr=False)
    _prev_thumb: npt.NDArray[np.float32] | None = field(default=None, init=False, repr=False)
    _last_ocr_s: float = field(default=0.0, init=False, repr=False)

    def needs_ocr(self, image: npt.NDArray[np.uint8], time_s: float) -> bool:
        thumb = text_mask_thumbnail(image)
        prev, self._prev_thumb = self._prev_thumb, thumb
        if self._last_thumb is not None and prev is not None:
            # A caption is cut in or out between two samples, so compare with the previous sample. A scrolling
            # background with sharp edges (bars) drifts the mask a little every frame (measured: ≤ 3 a step, but
            # 6.6 after 3.5 s against the last read), so the last read only counts at twice the threshold: that
            # still catches a slow fade.
            changed = _mad(thumb, prev) > self.threshold or _mad(thumb, self._last_thumb) > 2 * self.threshold
            # The safety net also covers blank stretches: a caption style the mask cannot see (dark text on a
            # light box) shows up as "no strokes", and only a forced read finds it.
            due = time_s - self._last_ocr_s >= self.forced_interval_s - 1e-6
            if not changed and not due:
                return False
        self._last_thumb = thumb
        self._last_ocr_s = time_s
        return True
