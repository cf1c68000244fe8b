"""Cut a stream of 16 kHz audio into pieces at quiet points, so long media is transcribed piece by piece.

Energy-based on purpose: we only need *where to cut*, never what to drop, so every sample is transcribed and no
speech is lost to a misjudged detector. A piece is cut at the quietest spot (smoothed RMS) within
``target ± slack`` seconds, which on speech is a pause between words. Pieces that are silent throughout are
flagged so the engine can skip them (Whisper tends to invent a "Thank you." on silence). It costs a few
milliseconds per minute of audio, where a neural VAD would add measurably to the stage time.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from captionqc.media.audio import SAMPLE_RATE, AudioArray

_FRAME = SAMPLE_RATE // 100  # 10 ms energy frames
_SMOOTH_FRAMES = 30  # a cut point sits in the middle of ~300 ms of quiet, not in a short stop consonant
# About -54 dBFS: below the noise floor of any speech recording worth transcribing.
SILENCE_RMS = 0.002


@dataclass(frozen=True)
class AudioPiece:
    """A stretch of the media's audio, ``start_s`` seconds from its start."""

    index: int
    start_s: float
    audio: AudioArray
    silent: bool

    @property
    def duration_s(self) -> float:
        return self.audio.size / SAMPLE_RATE


def _smoothed_rms(audio: AudioArray) -> npt.NDArray[np.float64]:
    frames = audio[: audio.size - audio.size % _FRAME].reshape(-1, _FRAME)
    rms: npt.NDArray[np.float64] = np.sqrt(np.mean(np.square(frames, dtype=np.float64), axis=1))
    if rms.size < _SMOOTH_FRAMES:
        return rms
    kernel = np.full(_SMOOTH_FRAMES, 1.0 / _SMOOTH_FRAMES)
    smoothed: npt.NDArray[np.float64] = np.convolve(rms, kernel, mode="same")
    return smoothed


def _is_silent(audio: AudioArray) -> bool:
    if audio.size == 0:
        return True
    rms = _smoothed_rms(audio)
    return bool(rms.size == 0 or float(rms.max()) < SILENCE_RMS)


def quietest_cut(audio: AudioArray, lo_s: float, hi_s: float) -> int:
    """The sample index of the quietest point of ``audio`` between ``lo_s`` and ``hi_s`` seconds."""
    rms = _smoothed_rms(audio)
    lo = max(0, int(lo_s * 100))
    hi = min(rms.size, int(hi_s * 100) + 1)
    if hi <= lo:
        return min(audio.size, int(hi_s * SAMPLE_RATE))
    # argmin takes the earliest of equally quiet frames, so the same audio always gives the same cut.
    return (lo + int(np.argmin(rms[lo:hi]))) * _FRAME + _FRAME // 2


def split_at_silences(blocks: Iterable[AudioArray], *, target_s: float, slack_s: float) -> Iterator[AudioPiece]:
    """Yield consecutive pieces of about ``target_s`` seconds as soon as enough audio has arrived.

    ``target_s = inf`` gives the whole audio as one piece.
    """
    slack_s = min(slack_s, target_s / 2)
    window = math.inf if math.isinf(target_s) else int((target_s + slack_s) * SAMPLE_RATE)
    pending: list[AudioArray] = []
    pending_samples = 0
    offset = 0
    index = 0
    for block in blocks:
        if block.size == 0:
            continue
        pending.append(block)
        pending_samples += block.size
        # Cut only once the whole search window is buffered, so a later block cannot move the cut.
        while pending_samples > window:
            buffered = np.concatenate(pending)
            cut = quietest_cut(buffered, target_s - slack_s, target_s + slack_s)
            piece = buffered[:cut]
            yield AudioPiece(index, offset / SAMPLE_RATE, piece, _is_silent(piece))
            index += 1
            offset += cut
            pending = [buffered[cut:]]
            pending_samples = pending[0].size
    if pending_samples:
        rest = np.concatenate(pending)
        yield AudioPiece(index, offset / SAMPLE_RATE, rest, _is_silent(rest))
