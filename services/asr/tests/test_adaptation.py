"""pocketsphinx speaker adaptation against the real model, front end and decoder the wheel ships."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from captionqc.asr.adaptation import (
    MIN_SPEECH_FRAMES,
    AcousticModel,
    MllrTransform,
    SpeakerAdapter,
    _front_end,
    dynamic_features,
    estimate_mllr,
    frame_labels,
)
from captionqc.asr.engines import PocketsphinxEngine
from captionqc.media.audio import SAMPLE_RATE, decode_audio

from .conftest import SAMPLE_CLIPS

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not SAMPLE_CLIPS, reason="no sample clips with ground truth under samples/"),
]


def _uniform(scale: float, bias: float) -> MllrTransform:
    """The same transform in all three streams: means become ``scale · mu + bias``."""
    return MllrTransform(tuple((scale * np.eye(13), np.full(13, bias)) for _ in range(3)))


@pytest.fixture(scope="module")
def engine() -> PocketsphinxEngine:
    return PocketsphinxEngine(british_pronunciations=False)  # the plain dictionary loads faster


@pytest.fixture(scope="module")
def model(engine: PocketsphinxEngine) -> AcousticModel:
    return SpeakerAdapter(engine.decoder()).model


@pytest.fixture(scope="module")
def piece(engine: PocketsphinxEngine) -> np.ndarray:
    audio = decode_audio(SAMPLE_CLIPS[0].media)[: 15 * SAMPLE_RATE]
    return engine._pcm(audio)


def test_model_files_are_read(model: AcousticModel) -> None:
    assert model.means.shape == model.variances.shape == (42, 3, 128, 13)
    assert model.phones[:3] == ("+NSN+", "+SPN+", "AA")
    assert model.phones[-1] == "ZH"
    assert model.mixture_scores.shape == (3, 128, 5126)
    weights = np.exp(model.log_weights(0, np.array([500, 4000])))
    # Stored as 8-bit scores in steps of 10 % (truncated): the weights of a senone sum to a little under 1.
    assert np.all((weights.sum(axis=1) > 0.85) & (weights.sum(axis=1) <= 1.0)), weights.sum(axis=1)


def test_front_end_features_line_up_with_the_decoders_alignment(
    engine: PocketsphinxEngine, model: AcousticModel, piece: np.ndarray
) -> None:
    decoder = engine._decode(piece)
    decoder.set_alignment()
    decoder.start_utt()
    decoder.process_raw(piece.tobytes(), full_utt=True)
    decoder.end_utt()
    cepstra = _front_end().cepstra(decoder.config.dumps(), piece)
    assert abs(len(cepstra) - decoder.n_frames()) <= 1
    senones, codebooks = frame_labels(decoder.get_alignment(), len(cepstra), model.phones)
    streams = dynamic_features(cepstra)

    def mean_log_likelihood(shift: int, codebook_offset: int = 0) -> float:
        frames = np.nonzero(codebooks >= 0)[0]
        frames = frames[(frames + shift >= 0) & (frames + shift < len(cepstra))]
        books = (codebooks[frames] + codebook_offset) % len(model.phones)
        total = 0.0
        for s, stream in enumerate(streams):
            obs = stream[frames + shift]
            means, variances = model.means[books, s], model.variances[books, s]
            per_gaussian = (
                -0.5 * (((obs[:, None, :] - means) ** 2) / variances).sum(-1)
                - 0.5 * np.log(variances).sum(-1)
                + model.log_weights(s, senones[frames])
            )
            total += float(np.logaddexp.reduce(per_gaussian, axis=1).mean())
        return total

    # The aligned states explain the features best where the decoder put them, not a few frames off, and with
    # their own phone's codebook: the front end, the deltas and the phone-to-codebook mapping all agree with what
    # pocketsphinx decoded.
    aligned = mean_log_likelihood(0)
    assert aligned > mean_log_likelihood(-3) + 1.0
    assert aligned > mean_log_likelihood(3) + 1.0
    assert aligned > mean_log_likelihood(0, codebook_offset=1) + 5.0


def _sample(
    model: AcousticModel, rng: np.random.Generator, transform: MllrTransform, frames: int
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Frames drawn from the model's context-independent senones, with the means moved by ``transform``."""
    speech = [c for c, name in enumerate(model.phones) if name != "SIL" and not name.startswith("+")]
    codebooks = rng.choice(speech, size=frames)
    senones = 3 * codebooks + rng.integers(0, 3, size=frames)  # the first 3·42 senones are the phones' own
    streams = []
    for s, (a, b) in enumerate(transform.streams):
        weights = np.exp(model.log_weights(s, senones))
        gaussians = np.array([rng.choice(len(w), p=w / w.sum()) for w in weights])
        means = model.means[codebooks, s, gaussians] @ a.T + b
        streams.append(means + rng.normal(size=means.shape) * np.sqrt(model.variances[codebooks, s, gaussians]))
    return streams, senones, codebooks


def _adapted(model: AcousticModel, transform: MllrTransform) -> AcousticModel:
    means = np.stack([model.means[:, s] @ a.T + b for s, (a, b) in enumerate(transform.streams)], axis=1)
    return dataclasses.replace(model, means=means)


def test_mllr_estimate_finds_a_known_voice(model: AcousticModel) -> None:
    rng = np.random.default_rng(5)
    identity = _uniform(1.0, 0.0)
    true = _uniform(0.85, 2.0)

    unchanged = estimate_mllr(model, *_sample(model, rng, identity, 6000))
    assert unchanged is not None
    for a, b in unchanged.streams:  # no voice change, (almost) no transform
        assert np.abs(b).max() < 0.5
        assert np.abs(a - np.eye(13)).max() < 0.1

    # One estimate is one EM step: its posteriors come from the unadapted means, so it goes most of the way. Re-
    # estimating against the adapted model, as a second adaptation pass would, converges on the true transform.
    frames = _sample(model, rng, true, 12000)
    first = estimate_mllr(model, *frames)
    assert first is not None
    second = estimate_mllr(_adapted(model, first), *frames)
    third = estimate_mllr(_adapted(_adapted(model, first), second), *frames) if second else None
    assert second is not None
    assert third is not None
    for s in range(3):
        (a1, b1), (a2, b2), (a3, b3) = first.streams[s], second.streams[s], third.streams[s]
        a, b = a3 @ a2 @ a1, a3 @ (a2 @ b1 + b2) + b3
        assert np.abs(np.diag(a1) - 0.85).mean() < 0.5 * 0.15
        assert np.abs(b1 - 2.0).mean() < 0.3 * 2.0
        # What is left is sampling noise (it shrinks with more frames).
        diagonal_error, bias_error = np.abs(np.diag(a) - 0.85), np.abs(b - 2.0)
        assert diagonal_error.mean() < 0.03, diagonal_error
        assert diagonal_error.max() < 0.08, diagonal_error
        assert bias_error.mean() < 0.2, bias_error
        assert bias_error.max() < 0.5, bias_error
        assert np.abs(a - np.diag(np.diag(a))).sum() / (13 * 12) < 0.025


def test_too_little_speech_is_not_adapted(model: AcousticModel) -> None:
    rng = np.random.default_rng(1)
    identity = _uniform(1.0, 0.0)
    assert estimate_mllr(model, *_sample(model, rng, identity, MIN_SPEECH_FRAMES - 1)) is None


def _words(engine: PocketsphinxEngine, piece: np.ndarray, transform: MllrTransform | None = None) -> list[str]:
    # The decoder must outlive its segment iterator: the binding's iterator does not keep it alive.
    if transform is None:
        decoder = engine._decode(piece)
        return [seg.word for seg in decoder.seg()]
    with transform.file() as path:
        decoder = engine._decode(piece, mllr=path)
    assert not path.exists()
    return [seg.word for seg in decoder.seg()]


def test_pocketsphinx_reads_the_transform_file(engine: PocketsphinxEngine, piece: np.ndarray) -> None:
    words = _words(engine, piece)
    identity = _uniform(1.0, 0.0)
    assert _words(engine, piece, identity) == words
    shifted = _uniform(1.0, 5.0)
    assert _words(engine, piece, shifted) != words  # the decoder applied it


def test_engine_adapts_and_labels_its_version(engine: PocketsphinxEngine) -> None:
    adapted, plain = PocketsphinxEngine(), PocketsphinxEngine(speaker_adaptation=False)
    assert adapted.info.version == plain.info.version + "+mllr"  # results of the two never share a ce-id
    audio = decode_audio(SAMPLE_CLIPS[0].media)
    assert adapted.transcribe(audio[: 3 * SAMPLE_RATE], language="en-GB") == plain.transcribe(
        audio[: 3 * SAMPLE_RATE], language="en-GB"
    )  # 3 s is too little speech to adapt to: the first pass stands
