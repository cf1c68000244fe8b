"""Unsupervised speaker adaptation for pocketsphinx: one global MLLR transform of the model's means per piece.

pocketsphinx's en-US acoustic model was trained on recorded American speech. A voice far from that (a British
synthetic voice in the sample clips, a studio chain, a speaker's own vocal tract) shifts every cepstral feature the
same way, and the decoder then hears other words that happen to fit. Speaker adaptation moves the model to the
voice instead of the voice to the model:

1. a first pass decodes the piece (the engine uses a faster search for it: only the phones' places matter);
2. pocketsphinx aligns its own hypothesis at the HMM-state level (``Decoder.set_alignment``);
3. each aligned frame's features are scored against its senone's Gaussians, and the posteriors give the
   statistics of maximum-likelihood linear regression (MLLR): per feature stream, the affine map ``A·mu + b`` of
   the model's means that makes the piece most likely;
4. the second pass decodes the piece again with that transform (``-mllr``), which pocketsphinx applies itself.

The transform is estimated from the first pass's errors too; that is why it is one global map per stream (546
numbers from thousands of frames) and not per phone: it captures the voice and the channel, not the words.

pocketsphinx's Python binding has no feature extractor, so the features come from its own C front end, called
through ``ctypes`` in the same extension module (``fe_*`` and ``ps_config_*`` are exported C API of the pinned
wheel); the deltas and the batch mean normalisation are computed as its ``1s_c_d_dd`` feature type does, and a
test checks that frames line up with the decoder's. The model files (means, variances, mixture weights, phone
list) are read from the model folder the wheel ships. No sphinxtrain tool is needed.

Measured with ``bench/asr_pocketsphinx.py``: see the engine's docstring and docs/architecture.md.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import math
import os
import struct
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from pocketsphinx import Alignment, Decoder

FloatArray = npt.NDArray[np.float64]

log = logging.getLogger(__name__)

# pocketsphinx scores in units of 2**10 steps of its log base (SENSCR_SHIFT); mixture weights in ``sendump`` are
# stored as such negated 8-bit scores.
_SCORE_SHIFT = 10
# Fewer aligned speech frames than this (8 s) pin the 14 unknowns of each row too loosely: no transform then.
MIN_SPEECH_FRAMES = 800
_FEATURE_TYPE = "1s_c_d_dd"


class AdaptationUnavailable(RuntimeError):
    """This pocketsphinx build or model cannot be adapted (checked once, when the engine is built)."""


@dataclass(frozen=True)
class AcousticModel:
    """The parts of a phonetically-tied pocketsphinx model that MLLR needs, read from its folder."""

    means: FloatArray  # (codebook, stream, gaussian, dim); a codebook per context-independent phone
    variances: FloatArray  # same shape, floored as the decoder floors them
    mixture_scores: npt.NDArray[np.uint8]  # (stream, gaussian, senone): negated log weights in decoder units
    phones: tuple[str, ...]  # context-independent phone names; index = codebook
    log_base: float

    @classmethod
    def load(cls, hmm: Path, *, variance_floor: float, log_base: float) -> AcousticModel:
        missing = [name for name in ("means", "variances", "mdef", "sendump") if not (hmm / name).is_file()]
        if missing:  # e.g. a fully continuous model (mixture_weights, a codebook per senone)
            raise AdaptationUnavailable(f"{hmm} is not a phonetically-tied model: no {', '.join(missing)}")
        means = _read_gaussians(hmm / "means")
        variances = np.maximum(_read_gaussians(hmm / "variances"), variance_floor)
        phones = _read_phones(hmm / "mdef")
        mixture_scores = _read_sendump(hmm / "sendump", streams=means.shape[1], gaussians=means.shape[2])
        # svspec 0-12/13-25/26-38: cepstra, deltas and double deltas, 13 each, as `dynamic_features` makes them.
        if means.shape[0] != len(phones) or means.shape[1] != 3 or means.shape[3] != 13:
            raise AdaptationUnavailable(f"{hmm} is not a phonetically-tied 3×13 model (means {means.shape})")
        return cls(means, variances, mixture_scores, phones, log_base)

    def log_weights(self, stream: int, senones: npt.NDArray[np.int64]) -> FloatArray:
        """Log mixture weights (natural log) of ``senones`` in one stream, shape (len(senones), gaussians)."""
        scores = self.mixture_scores[stream][:, senones].T.astype(np.float64)
        weights: FloatArray = -scores * (2**_SCORE_SHIFT) * math.log(self.log_base)
        return weights


@dataclass(frozen=True)
class MllrTransform:
    """One class, per stream: means become ``A @ mu + b``; variances are kept."""

    streams: tuple[tuple[FloatArray, FloatArray], ...]

    def text(self) -> str:
        """pocketsphinx's MLLR file format (``ps_mllr_read``): classes, streams, then per stream A, b, h."""
        lines = ["1", str(len(self.streams))]
        for a, b in self.streams:
            lines.append(str(len(b)))
            lines += [" ".join(f"{x:.7g}" for x in row) for row in a]
            lines.append(" ".join(f"{x:.7g}" for x in b))
            lines.append(" ".join("1" for _ in b))
        return "\n".join(lines) + "\n"

    @contextmanager
    def file(self) -> Iterator[Path]:
        """The transform in a temporary file, for the decoder's ``mllr`` option; removed afterwards."""
        fd, name = tempfile.mkstemp(prefix="captionqc-mllr-", suffix=".txt")
        try:
            with os.fdopen(fd, "w", encoding="ascii") as out:
                out.write(self.text())
            yield Path(name)
        finally:
            os.unlink(name)


class SpeakerAdapter:
    """Estimates a piece's MLLR transform from a decoder that has just decoded it."""

    def __init__(self, decoder: Decoder) -> None:
        config = decoder.config
        if config["feat"] != _FEATURE_TYPE or config["cmn"] != "batch" or config["lda"]:
            raise AdaptationUnavailable(
                f"speaker adaptation supports feature type {_FEATURE_TYPE} with batch CMN and no LDA, "
                f"not {config['feat']}/{config['cmn']}"
            )
        self._front_end = _front_end()
        self._model = _model(Path(str(config["hmm"])), float(config["varfloor"]), float(config["logbase"]))
        self._min_samples = MIN_SPEECH_FRAMES * int(config["samprate"]) // int(config["frate"])

    @property
    def model(self) -> AcousticModel:
        return self._model

    def may_adapt(self, pcm: npt.NDArray[np.int16]) -> bool:
        """False when ``pcm`` is too short to hold enough speech: no first pass is worth running for it."""
        return pcm.size >= self._min_samples

    def estimate(self, decoder: Decoder, pcm: npt.NDArray[np.int16]) -> MllrTransform | None:
        """The transform for ``pcm``, which ``decoder`` has just decoded; None when there is too little speech.

        Runs pocketsphinx's second, state-level alignment pass on ``decoder``: decode with a fresh decoder after.
        """
        if decoder.hyp() is None:
            return None
        try:
            decoder.set_alignment()
        except RuntimeError:  # a hypothesis of fillers only has no phones to align
            return None
        decoder.start_utt()
        decoder.process_raw(pcm.tobytes(), full_utt=True)
        decoder.end_utt()
        alignment = decoder.get_alignment()
        cepstra = self._front_end.cepstra(decoder.config.dumps(), pcm)
        if alignment is None or abs(len(cepstra) - decoder.n_frames()) > 1:
            # Never seen. The engine then decodes unadapted rather than adapt to misaligned frames.
            log.warning(
                "speaker adaptation skipped: %d feature frames against %d decoded", len(cepstra), decoder.n_frames()
            )
            return None
        senones, codebooks = frame_labels(alignment, len(cepstra), self._model.phones)
        return estimate_mllr(self._model, dynamic_features(cepstra), senones, codebooks)


@functools.cache
def _front_end() -> FrontEnd:
    from pocketsphinx import _pocketsphinx

    try:
        return FrontEnd(ctypes.CDLL(_pocketsphinx.__file__))
    except (OSError, AttributeError) as exc:  # a build without the exported C API
        raise AdaptationUnavailable(f"pocketsphinx's front end is not reachable: {exc}") from exc


@functools.cache
def _model(hmm: Path, variance_floor: float, log_base: float) -> AcousticModel:
    return AcousticModel.load(hmm, variance_floor=variance_floor, log_base=log_base)


def dynamic_features(cepstra: FloatArray) -> list[FloatArray]:
    """pocketsphinx's ``1s_c_d_dd`` streams of one whole utterance: mean-normalised cepstra, deltas, double deltas.

    Batch CMN subtracts the utterance mean. Deltas span ±2 frames, double deltas are the difference of deltas one
    frame either side; edges repeat the first and last frame, as ``feat_s2mfc2feat`` pads them.
    """
    normalised = cepstra - cepstra.mean(axis=0)
    padded = np.pad(normalised, ((3, 3), (0, 0)), mode="edge")
    frames = len(normalised)

    def shifted(k: int) -> FloatArray:
        return padded[3 + k : 3 + k + frames]

    deltas = shifted(2) - shifted(-2)
    double_deltas = (shifted(3) - shifted(-1)) - (shifted(1) - shifted(-3))
    return [normalised, deltas, double_deltas]


def frame_labels(
    alignment: Alignment, frames: int, phones: Sequence[str]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Senone and codebook of every aligned speech frame (-1 elsewhere: silence, fillers, unaligned frames).

    Silence and noise are left out: the noise floor is no property of the speaker.
    """
    senones = np.full(frames, -1, dtype=np.int64)
    codebooks = np.full(frames, -1, dtype=np.int64)
    index = {name: i for i, name in enumerate(phones)}
    for phone in alignment.phones():
        if phone.name == "SIL" or phone.name.startswith("+"):
            continue
        for state in phone:
            end = min(state.start + state.duration, frames)
            senones[state.start : end] = int(state.name)  # a state's name is its senone id
            codebooks[state.start : end] = index[phone.name]  # a tied-mixture codebook per base phone
    return senones, codebooks


def estimate_mllr(
    model: AcousticModel,
    streams: Sequence[FloatArray],
    senones: npt.NDArray[np.int64],
    codebooks: npt.NDArray[np.int64],
    *,
    min_frames: int = MIN_SPEECH_FRAMES,
) -> MllrTransform | None:
    """Maximum-likelihood ``A``, ``b`` per stream (diagonal covariances: one linear system per row), or None.

    For row i with extended means xi = [1, mu]: G_i = sum gamma / var_i · xi xiᵀ and k_i = sum gamma · o_i / var_i
    · xi over frames and Gaussians, then [b_i, A_i] = G_i⁻¹ k_i (Leggetter & Woodland 1995).
    """
    labelled = codebooks >= 0
    if labelled.sum() < min_frames:
        return None
    solved = []
    for s, observations in enumerate(streams):
        dims = observations.shape[1]
        gram = np.zeros((dims, dims + 1, dims + 1))
        target = np.zeros((dims, dims + 1))
        for codebook in np.unique(codebooks[labelled]):
            frames = np.nonzero(codebooks == codebook)[0]
            means, variances = model.means[codebook, s], model.variances[codebook, s]
            occupancy, weighted_sum = _posterior_sums(
                observations[frames], means, variances, model.log_weights(s, senones[frames])
            )
            extended = np.hstack([np.ones((len(means), 1)), means])
            for i in range(dims):
                scale = occupancy / variances[:, i]
                gram[i] += (extended * scale[:, None]).T @ extended
                target[i] += (weighted_sum[:, i] / variances[:, i]) @ extended
        rows = np.empty((dims, dims + 1))
        for i in range(dims):
            try:
                rows[i] = np.linalg.solve(gram[i], target[i])
            except np.linalg.LinAlgError:
                return None
        if not np.all(np.isfinite(rows)):
            return None
        solved.append((rows[:, 1:].copy(), rows[:, 0].copy()))
    return MllrTransform(tuple(solved))


def _posterior_sums(
    observations: FloatArray, means: FloatArray, variances: FloatArray, log_weights: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Per Gaussian: summed posterior, and posterior-weighted sum of the observations."""
    log_likelihood = (
        -0.5 * (((observations[:, None, :] - means[None]) ** 2) / variances[None]).sum(axis=-1)
        - 0.5 * np.log(variances).sum(axis=-1)[None]
        + log_weights
    )
    log_likelihood -= log_likelihood.max(axis=1, keepdims=True)
    posteriors = np.exp(log_likelihood)
    posteriors /= posteriors.sum(axis=1, keepdims=True)
    return posteriors.sum(axis=0), posteriors.T @ observations


class FrontEnd:
    """pocketsphinx's own MFCC front end (``fe_*``), called in the extension module the wheel ships."""

    _FloatPtr = ctypes.POINTER(ctypes.c_float)

    def __init__(self, library: ctypes.CDLL) -> None:
        lib = library
        lib.ps_config_parse_json.restype = ctypes.c_void_p
        lib.ps_config_parse_json.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        lib.ps_config_free.argtypes = [ctypes.c_void_p]
        lib.fe_init_auto_r.restype = ctypes.c_void_p
        lib.fe_init_auto_r.argtypes = [ctypes.c_void_p]
        lib.fe_start_utt.argtypes = [ctypes.c_void_p]
        lib.fe_get_output_size.argtypes = [ctypes.c_void_p]
        lib.fe_process_utt.argtypes = [
            ctypes.c_void_p,
            ctypes.POINTER(ctypes.c_int16),
            ctypes.c_size_t,
            ctypes.POINTER(ctypes.POINTER(self._FloatPtr)),
            ctypes.POINTER(ctypes.c_int32),
        ]
        lib.fe_end_utt.argtypes = [ctypes.c_void_p, self._FloatPtr, ctypes.POINTER(ctypes.c_int32)]
        lib.fe_free_2d.argtypes = [ctypes.c_void_p]
        lib.fe_free.argtypes = [ctypes.c_void_p]
        self._lib = lib

    def cepstra(self, config_json: str, pcm: npt.NDArray[np.int16]) -> FloatArray:
        """MFCC frames (frames × ncep) of 16-bit ``pcm`` under a decoder's configuration (its ``dumps()``)."""
        lib = self._lib
        config = lib.ps_config_parse_json(None, config_json.encode())
        if not config:
            raise AdaptationUnavailable("pocketsphinx refused its own configuration")
        front_end = lib.fe_init_auto_r(config)
        lib.ps_config_free(config)  # the front end holds its own reference
        if not front_end:
            raise AdaptationUnavailable("pocketsphinx's front end did not start")
        try:
            width = lib.fe_get_output_size(front_end)
            samples = np.ascontiguousarray(pcm, dtype=np.int16)
            block = ctypes.POINTER(self._FloatPtr)()
            count = ctypes.c_int32()
            lib.fe_start_utt(front_end)
            status = lib.fe_process_utt(
                front_end,
                samples.ctypes.data_as(ctypes.POINTER(ctypes.c_int16)),
                samples.size,
                ctypes.byref(block),
                ctypes.byref(count),
            )
            try:
                if status < 0:
                    raise AdaptationUnavailable(f"pocketsphinx's front end failed ({status})")
                frames = np.ctypeslib.as_array(block[0], shape=(count.value, width)).astype(np.float64)
            finally:
                lib.fe_free_2d(ctypes.cast(block, ctypes.c_void_p))
            last = (ctypes.c_float * width)()
            tail = ctypes.c_int32()
            lib.fe_end_utt(front_end, last, ctypes.byref(tail))
            if tail.value:
                frames = np.vstack([frames, np.asarray(last[:], dtype=np.float64)[None]])
            return frames
        finally:
            lib.fe_free(front_end)


def _read_gaussians(path: Path) -> FloatArray:
    """A Sphinx-3 binary parameter file (means or variances): codebook × stream × gaussian × dim."""
    data = path.read_bytes()
    at = data.index(b"endhdr\n") + len(b"endhdr\n")
    (magic,) = struct.unpack_from("<I", data, at)
    if magic != 0x11223344:
        raise AdaptationUnavailable(f"{path}: byte order {magic:#x} is not little-endian Sphinx-3")
    codebooks, streams, gaussians = struct.unpack_from("<3i", data, at + 4)
    lengths = struct.unpack_from(f"<{streams}i", data, at + 16)
    (count,) = struct.unpack_from("<i", data, at + 16 + 4 * streams)
    if len(set(lengths)) != 1 or count != codebooks * gaussians * sum(lengths):
        raise AdaptationUnavailable(f"{path}: unexpected stream lengths {lengths}")
    values = np.frombuffer(data, dtype="<f4", count=count, offset=at + 20 + 4 * streams)
    return values.reshape(codebooks, streams, gaussians, lengths[0]).astype(np.float64)


def _read_phones(path: Path) -> tuple[str, ...]:
    """Context-independent phone names of a binary model definition (``BMDF``), in codebook order."""
    data = path.read_bytes()
    if data[:4] != b"BMDF":
        raise AdaptationUnavailable(f"{path} is not a binary model definition")
    (description_length,) = struct.unpack_from("<i", data, 8)
    at = 12 + description_length
    n_phones = struct.unpack_from("<i", data, at)[0]
    silence = struct.unpack_from("<i", data, at + 36)[0]
    names = data[at + 40 :].split(b"\0", n_phones)[:n_phones]
    phones = tuple(name.decode("ascii") for name in names)
    if phones[silence] != "SIL":
        raise AdaptationUnavailable(f"{path}: phone list does not line up (silence is {phones[silence]!r})")
    return phones


def _read_sendump(path: Path, *, streams: int, gaussians: int) -> npt.NDArray[np.uint8]:
    """8-bit mixture weights of a ``sendump`` file: stream × gaussian × senone."""
    data = path.read_bytes()
    at = 0
    header: dict[str, str] = {}
    for _ in range(2):  # title, then the format description
        (length,) = struct.unpack_from("<i", data, at)
        at += 4 + length
    while True:
        (length,) = struct.unpack_from("<i", data, at)
        at += 4
        if length == 0:
            break
        key, _, value = data[at : at + length - 1].decode("ascii").partition(" ")
        header[key] = value
        at += length
    if header.get("cluster_count", "0") != "0" or header.get("cluster_bits", "8") != "8":
        raise AdaptationUnavailable(f"{path}: clustered mixture weights are not supported")
    rows, senones = struct.unpack_from("<2i", data, at)
    if rows != gaussians:
        raise AdaptationUnavailable(f"{path}: {rows} mixture rows, expected {gaussians}")
    values = np.frombuffer(data, dtype=np.uint8, count=streams * rows * senones, offset=at + 8)
    return values.reshape(streams, rows, senones)
