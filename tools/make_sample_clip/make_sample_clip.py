#!/usr/bin/env python3
"""Build labelled sample clips: spoken lines (espeak-ng) with burned-in captions (ffmpeg drawtext) and typos.

One script of lines in, one MP4 (H.264 + AAC, 1280x720, 25 fps) plus `<stem>.truth.json` out. The truth
records, per caption, when it is on screen, what it shows, what was said, and every typo injected on
purpose, so the OCR, ASR and cross-check stages can be scored against it.
See README.md beside this file for the script format.

A developer tool (needs the Debian packages espeak-ng, ffmpeg and fonts-dejavu-core); tests and CI use only
the committed clips under samples/, never this script.
"""

# Seeded `random.Random` is the point here (reproducible clips), not a security concern.
# ruff: noqa: S311

from __future__ import annotations

import argparse
import json
import math
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import wave
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import ImageFont
from wordfreq import zipf_frequency

WIDTH, HEIGHT, FPS = 1280, 720, 25
FONT_FILE = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
FONT_SIZE = 44
# Broadcast caption convention: at most two rows of at most 42 characters.
MAX_LINE_CHARS = 42
MAX_ROWS = 2
# Wrap the *spoken* text a little tighter so a typo that adds a letter still fits in 42 on screen.
SPOKEN_WRAP_CHARS = 40
# Widest row allowed on a 1280 px frame; wider rows get a smaller font for that caption only.
MAX_ROW_PX = 1200
LEAD_IN_S = 0.5
TAIL_S = 0.6
# A sample counts as speech above ~1% of full scale; espeak pads every utterance with silence we trim off,
# so captions are on screen exactly while the words are audible.
SILENCE_THRESHOLD = 330

Style = Literal["box", "outline", "halfbox", "yellow"]
STYLES: tuple[Style, ...] = ("box", "outline", "halfbox", "yellow")
TypoType = Literal["letter_swap", "dropped_letter", "doubled_letter", "homophone", "wrong_number"]
TYPO_TYPES: tuple[TypoType, ...] = (
    "letter_swap",
    "dropped_letter",
    "doubled_letter",
    "homophone",
    "wrong_number",
)
SPELLING_TYPES: tuple[TypoType, ...] = ("letter_swap", "dropped_letter", "doubled_letter")
# Spelling typos never touch words of 2 letters or fewer; automatic ones also leave 3-letter words alone:
# "the" -> "th" or "for" -> "fr" in nearly every clip says more about the generator than about captions.
MIN_AUTO_SPELLING_LETTERS = 4
BACKGROUNDS = ("gradients", "plasma", "shapes", "bars")
# espeak-ng voices that need no mbrola data; "+f3"/"+m3" are variants (pitch/formant changes) of a voice.
BATCH_VOICES = ("en", "en-us", "en-gb", "en+f3", "en+m3", "en-us+f2", "en-gb+m4")

# Sets a listener cannot tell apart (or nearly): a caption showing another member is a real-word error
# that a spell checker never sees. Each set maps every member to the others.
HOMOPHONE_SETS: tuple[tuple[str, ...], ...] = (
    ("their", "there", "they're"),
    ("to", "too", "two"),
    ("its", "it's"),
    ("your", "you're"),
    ("whose", "who's"),
    ("principal", "principle"),
    ("weather", "whether"),
    ("affect", "effect"),
    ("council", "counsel"),
    ("stationary", "stationery"),
    ("compliment", "complement"),
    ("past", "passed"),
    ("new", "knew"),
    ("right", "write"),
    ("here", "hear"),
    ("week", "weak"),
    ("break", "brake"),
    ("peace", "piece"),
    ("site", "sight"),
    ("sale", "sail"),
    ("rain", "reign"),
    ("board", "bored"),
    ("role", "roll"),
    ("plane", "plain"),
    ("fair", "fare"),
    ("road", "rode"),
    ("through", "threw"),
    ("allowed", "aloud"),
    ("waste", "waist"),
    ("course", "coarse"),
    ("higher", "hire"),
    ("meet", "meat"),
    ("seen", "scene"),
    ("whole", "hole"),
    ("heard", "herd"),
    ("great", "grate"),
    ("sea", "see"),
    ("morning", "mourning"),
    ("steal", "steel"),
    ("wait", "weight"),
    ("won", "one"),
    ("led", "lead"),
    ("tide", "tied"),
    ("poll", "pole"),
    ("due", "dew"),
)
HOMOPHONES: dict[str, list[str]] = {
    word: [other for other in group if other != word] for group in HOMOPHONE_SETS for word in group
}

_CORE_RE = re.compile(r"^(?P<lead>[^\w']*)(?P<core>.*?)(?P<trail>[^\w]*)$")


# --------------------------------------------------------------------------------------------- script model


@dataclass(frozen=True)
class TypoSpec:
    """A typo asked for by the script: which word of the line, which type, optionally the displayed form."""

    word_index: int
    typo_type: TypoType
    displayed: str | None = None


@dataclass
class ScriptLine:
    text: str
    style: Style | None = None
    # None: the generator may pick typos here; a list (even empty) means the script decides for this line.
    typos: list[TypoSpec] | None = None


@dataclass
class ClipScript:
    clip: str
    lines: list[ScriptLine]
    voice: str = "en"
    rate: int = 160
    seed: int = 1
    background: str = "gradients"
    style: Style = "box"
    typo_rate: float = 1 / 8
    gap_s: tuple[float, float] = (0.35, 0.7)


@dataclass
class Typo:
    word_index: int
    displayed: str
    spoken: str
    kind: str
    typo_type: TypoType


@dataclass
class Caption:
    spoken_words: list[str]
    style: Style
    explicit: list[TypoSpec] | None
    displayed_words: list[str] = field(default_factory=list)
    typos: list[Typo] = field(default_factory=list)
    rows: list[str] = field(default_factory=list)
    start_s: float = 0.0
    end_s: float = 0.0


def load_script(path: Path) -> ClipScript:
    raw = json.loads(path.read_text(encoding="utf-8"))
    return script_from_dict(raw, default_clip=path.stem + ".mp4")


def script_from_dict(raw: dict[str, Any], default_clip: str = "clip.mp4") -> ClipScript:
    lines: list[ScriptLine] = []
    for item in raw["lines"]:
        entry = {"text": item} if isinstance(item, str) else item
        typos = None
        if "typos" in entry:
            typos = [_typo_spec(entry["text"], spec) for spec in entry["typos"]]
        style = entry.get("style")
        if style is not None and style not in STYLES:
            raise SystemExit(f"unknown caption style {style!r} (choose from {', '.join(STYLES)})")
        lines.append(ScriptLine(text=" ".join(entry["text"].split()), style=style, typos=typos))
    gap = raw.get("gap_s", [0.35, 0.7])
    return ClipScript(
        clip=raw.get("clip", default_clip),
        lines=lines,
        voice=raw.get("voice", "en"),
        rate=int(raw.get("rate", 160)),
        seed=int(raw.get("seed", 1)),
        background=raw.get("background", "gradients"),
        style=raw.get("style", "box"),
        typo_rate=float(raw.get("typo_rate", 1 / 8)),
        gap_s=(float(gap[0]), float(gap[1])),
    )


def _typo_spec(text: str, spec: dict[str, Any]) -> TypoSpec:
    words = text.split()
    if "word_index" in spec:
        index = int(spec["word_index"])
    else:
        # Matching by word is friendlier to write by hand; the first whole-word match wins.
        wanted = spec["word"]
        matches = [i for i, w in enumerate(words) if split_word(w)[1] == wanted]
        if not matches:
            raise SystemExit(f"typo word {wanted!r} not found in line {text!r}")
        index = matches[0]
    if not 0 <= index < len(words):
        raise SystemExit(f"typo word_index {index} out of range in line {text!r}")
    if spec["type"] not in TYPO_TYPES:
        raise SystemExit(f"unknown typo type {spec['type']!r} (choose from {', '.join(TYPO_TYPES)})")
    return TypoSpec(word_index=index, typo_type=spec["type"], displayed=spec.get("displayed"))


# --------------------------------------------------------------------------------------------- typos


def split_word(token: str) -> tuple[str, str, str]:
    """Split a whitespace token into leading punctuation, the word itself, trailing punctuation."""
    match = _CORE_RE.match(token)
    assert match is not None  # the pattern matches any string
    return match["lead"], match["core"], match["trail"]


def _letters(core: str) -> int:
    return sum(ch.isalpha() for ch in core)


def is_number(core: str) -> bool:
    return bool(re.fullmatch(r"\d[\d,.]*", core)) and any(ch.isdigit() for ch in core)


def _match_case(template: str, word: str) -> str:
    if template.isupper() and len(template) > 1:
        return word.upper()
    if template[:1].isupper():
        return word[:1].upper() + word[1:]
    return word


def apply_typo(core: str, typo_type: TypoType, rng: random.Random) -> str | None:
    """The displayed form of `core` with one typo of this type, or None if the type cannot apply to it."""
    if typo_type == "homophone":
        options = HOMOPHONES.get(core.lower())
        return _match_case(core, rng.choice(options)) if options else None
    if typo_type == "wrong_number":
        return _wrong_number(core, rng) if is_number(core) else None
    # Spelling typos need 3+ letters: a 2-letter word with a typo is unreadable rather than realistic.
    if not core.isalpha() or len(core) <= 2:
        return None
    # Typists rarely get the first letter wrong, so positions start at 1.
    if typo_type == "letter_swap":
        spots = [i for i in range(1, len(core) - 1) if core[i].lower() != core[i + 1].lower()]
        if not spots:
            return None
        i = rng.choice(spots)
        return core[:i] + core[i + 1] + core[i] + core[i + 2 :]
    if typo_type == "dropped_letter":
        i = rng.randrange(1, len(core))
        return core[:i] + core[i + 1 :]
    # doubled_letter: skip letters already doubled, a tripled letter looks like a rendering bug, not a typo.
    # The last letter is left alone too: "poundd" looks like a stuck key rather than a spelling slip.
    spots = [i for i in range(1, len(core) - 1) if core[i] != core[i - 1] and core[i] != core[i + 1]]
    if not spots:
        return None
    i = rng.choice(spots)
    return core[: i + 1] + core[i] + core[i + 1 :]


def _wrong_number(core: str, rng: random.Random) -> str:
    # Change one of the two leading digits so the value is clearly different ("80,000" -> "18,000"/"30,000"),
    # not a change in trailing zeros a viewer would shrug at.
    digit_positions = [i for i, ch in enumerate(core) if ch.isdigit()][:2]
    i = rng.choice(digit_positions)
    if i == 0 and rng.random() < 0.4 and core[0] != "1":
        # The "80,000" -> "18,000" pattern: a stray leading digit replaces the second one.
        j = digit_positions[-1]
        return core[:j] + core[0] + core[j + 1 :] if j != 0 else core.replace(core[0], "1", 1)
    choices = [d for d in "0123456789" if d != core[i] and not (i == 0 and d == "0")]
    return core[:i] + rng.choice(choices) + core[i + 1 :]


def typo_kind(displayed_core: str, typo_type: TypoType) -> str:
    if typo_type == "wrong_number":
        return "number_mismatch"
    if typo_type == "homophone":
        return "wrong_word"
    # A spelling typo that lands on another real word ("form" for "from") is a real-word error.
    return "misspelling" if zipf_frequency(displayed_core.lower(), "en") == 0 else "wrong_word"


def _unambiguous(displayed_core: str) -> bool:
    # wordfreq also lists common misspellings ("teh" 3.0, "recieve" 2.7). Automatic typos stay out of that
    # band, so "misspelling" (not in the list at all) vs "wrong_word" (a common word) is a clear-cut label.
    zipf = zipf_frequency(displayed_core.lower(), "en")
    return zipf == 0 or zipf >= 3.0


def _typo_on_word(caption: Caption, index: int, typo_type: TypoType, displayed: str | None, rng: random.Random) -> bool:
    lead, core, trail = split_word(caption.spoken_words[index])
    new_core = displayed if displayed is not None else apply_typo(core, typo_type, rng)
    if new_core is None or new_core == core:
        return False
    caption.displayed_words[index] = lead + new_core + trail
    caption.typos.append(
        Typo(
            word_index=index,
            displayed=new_core,
            spoken=core,
            kind=typo_kind(new_core, typo_type),
            typo_type=typo_type,
        )
    )
    return True


def inject_typos(captions: list[Caption], typo_rate: float, rng: random.Random) -> None:
    """Apply the script's typos, then pick more at random until about `typo_rate` of all words carry one."""
    for caption in captions:
        caption.displayed_words = list(caption.spoken_words)
        for spec in caption.explicit or []:
            if not _typo_on_word(caption, spec.word_index, spec.typo_type, spec.displayed, rng):
                raise SystemExit(f"cannot apply {spec.typo_type} to {caption.spoken_words[spec.word_index]!r}")
    total_words = sum(len(c.spoken_words) for c in captions)
    wanted = round(total_words * typo_rate) - sum(len(c.typos) for c in captions)
    # Numbers and homophone words are the cases a spell checker cannot catch, so they get picked more often
    # than their share of the text; otherwise a clip would hardly ever contain them.
    candidates: list[tuple[float, int, int]] = []
    for ci, caption in enumerate(captions):
        if caption.explicit is not None:
            continue
        for wi, token in enumerate(caption.spoken_words):
            core = split_word(token)[1]
            if is_number(core):
                weight = 4.0
            elif core.lower() in HOMOPHONES:
                weight = 2.5
            elif core.isalpha() and len(core) >= MIN_AUTO_SPELLING_LETTERS:
                weight = 1.0
            else:
                continue
            candidates.append((weight, ci, wi))
    rng.shuffle(candidates)
    # Weighted sampling without replacement (Efraimidis-Spirakis keys).
    candidates.sort(key=lambda c: rng.random() ** (1 / c[0]), reverse=True)
    used: Counter[TypoType] = Counter(t.typo_type for c in captions for t in c.typos)
    for _, ci, wi in candidates:
        if wanted <= 0:
            break
        caption = captions[ci]
        # More than two typos in one caption reads as garbage, not as a slip.
        if len(caption.typos) >= 2 or any(abs(t.word_index - wi) <= 1 for t in caption.typos):
            continue
        if _auto_typo(caption, wi, used, rng):
            used[caption.typos[-1].typo_type] += 1
            wanted -= 1
    for caption in captions:
        caption.typos.sort(key=lambda t: t.word_index)


def _auto_typo(caption: Caption, index: int, used: Counter[TypoType], rng: random.Random) -> bool:
    core = split_word(caption.spoken_words[index])[1]
    if is_number(core):
        order: list[TypoType] = ["wrong_number"]
    else:
        # The least used spelling type first: some types fail the clear-label test more often than others
        # (a dropped letter often makes another word), and a clip should still get a fair mix of them.
        order = sorted(SPELLING_TYPES, key=lambda t: (used[t], rng.random()))
        if core.lower() in HOMOPHONES and rng.random() < 0.7:
            order.insert(0, "homophone")
        elif len(core) < MIN_AUTO_SPELLING_LETTERS:
            order = ["homophone"]
    for typo_type in order:
        for _ in range(6):
            new_core = apply_typo(core, typo_type, rng)
            if new_core is None:
                break
            if typo_type in SPELLING_TYPES and not _unambiguous(new_core):
                continue
            return _typo_on_word(caption, index, typo_type, new_core, rng)
    return False


# --------------------------------------------------------------------------------------------- layout


def wrap_rows(words: Sequence[str], limit: int) -> list[list[str]] | None:
    """Balanced wrap into at most two rows of <= limit characters (None if it does not fit)."""
    if len(" ".join(words)) <= limit:
        return [list(words)]
    best: tuple[int, int] | None = None
    for cut in range(1, len(words)):
        top, bottom = len(" ".join(words[:cut])), len(" ".join(words[cut:]))
        if top <= limit and bottom <= limit and (best is None or max(top, bottom) < best[0]):
            best = (max(top, bottom), cut)
    if best is None:
        return None
    return [list(words[: best[1]]), list(words[best[1] :])]


def split_into_captions(line: ScriptLine, default_style: Style) -> list[Caption]:
    """One caption per script line, or several (each spoken on its own) if it does not fit in two rows."""
    words = line.text.split()
    chunks: list[tuple[int, int]] = []
    start = 0
    while start < len(words):
        end = len(words)
        while wrap_rows(words[start:end], SPOKEN_WRAP_CHARS) is None:
            end -= 1
        if end == start:
            raise SystemExit(f"word too long for a caption row: {words[start]!r}")
        chunks.append((start, end))
        start = end
    captions = []
    for start, end in chunks:
        explicit = None
        if line.typos is not None:
            explicit = [
                TypoSpec(t.word_index - start, t.typo_type, t.displayed)
                for t in line.typos
                if start <= t.word_index < end
            ]
        captions.append(Caption(spoken_words=words[start:end], style=line.style or default_style, explicit=explicit))
    return captions


def layout_rows(caption: Caption) -> None:
    # Break the displayed text where the spoken text broke, so a typo never reflows the caption.
    spoken_rows = wrap_rows(caption.spoken_words, SPOKEN_WRAP_CHARS)
    assert spoken_rows is not None
    rows, i = [], 0
    for row in spoken_rows:
        rows.append(" ".join(caption.displayed_words[i : i + len(row)]))
        i += len(row)
    if any(len(r) > MAX_LINE_CHARS for r in rows):
        rewrapped = wrap_rows(caption.displayed_words, MAX_LINE_CHARS)
        if rewrapped is None:
            raise SystemExit(f"caption does not fit in two rows: {' '.join(caption.displayed_words)!r}")
        rows = [" ".join(r) for r in rewrapped]
    caption.rows = rows


# --------------------------------------------------------------------------------------------- audio


def speak(text: str, voice: str, rate: int, work: Path, name: str) -> tuple[np.ndarray, int]:
    """espeak-ng one utterance; return its samples with the leading/trailing silence trimmed, and the rate."""
    text_file = work / f"{name}.txt"
    wav_file = work / f"{name}.wav"
    text_file.write_text(text, encoding="utf-8")
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(rate), "-f", str(text_file), "-w", str(wav_file)],
        check=True,
        capture_output=True,
    )
    with wave.open(str(wav_file), "rb") as wav:
        if wav.getsampwidth() != 2 or wav.getnchannels() != 1:
            raise SystemExit(f"unexpected espeak-ng output format in {wav_file}")
        sample_rate = wav.getframerate()
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype=np.int16)
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > SILENCE_THRESHOLD)
    if loud.size == 0:
        raise SystemExit(f"espeak-ng produced silence for {text!r}")
    return samples[loud[0] : loud[-1] + 1], sample_rate


def build_audio(captions: list[Caption], script: ClipScript, rng: random.Random, work: Path) -> tuple[Path, float]:
    """Speak every caption, lay the utterances out with pauses, set caption times; return WAV and length."""
    pieces: list[np.ndarray] = []
    sample_rate = 0
    cursor = 0
    for index, caption in enumerate(captions):
        samples, sample_rate = speak(
            " ".join(caption.spoken_words), script.voice, script.rate, work, f"line{index:03d}"
        )
        pause = LEAD_IN_S if index == 0 else rng.uniform(*script.gap_s)
        silence = np.zeros(round(pause * sample_rate), dtype=np.int16)
        pieces += [silence, samples]
        cursor += silence.size
        # Times come from the sample counts of the real utterances, rounded to the millisecond.
        caption.start_s = round(cursor / sample_rate, 3)
        cursor += samples.size
        caption.end_s = round(cursor / sample_rate, 3)
    pieces.append(np.zeros(round(TAIL_S * sample_rate), dtype=np.int16))
    audio = np.concatenate(pieces)
    wav_path = work / "speech.wav"
    with wave.open(str(wav_path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(audio.tobytes())
    return wav_path, audio.size / sample_rate


# --------------------------------------------------------------------------------------------- video


def background_filter(name: str, duration: float, seed: int) -> str:
    """A source that changes every frame (behind the captions too): a naive frame difference always fires."""
    size = f"{WIDTH}x{HEIGHT}"
    rng = random.Random(seed)
    if name == "gradients":
        palette = ["0x1d3557", "0x457b9d", "0x6a4c93", "0x2a9d8f", "0xe76f51", "0x8d5524", "0x264653"]
        rng.shuffle(palette)
        colors = ":".join(f"c{i}={c}" for i, c in enumerate(palette[:3]))
        return f"gradients=s={size}:r={FPS}:d={duration:.3f}:{colors}:nb_colors=3:speed=0.03:seed={seed}"
    if name == "plasma":
        # One large plasma frame, rendered once and panned over in whole-pixel steps: the picture changes
        # every frame, yet the encoder can follow it with motion vectors, so the clip stays small.
        phase = rng.uniform(0, 6.28)
        return (
            f"nullsrc=s=1760x1040:r={FPS}:d=0.04,"
            f"geq=r='110+80*sin(X/97+{phase:.2f})+20*sin(Y/41)':"
            f"g='100+70*sin(Y/67)+25*sin((X-Y)/53)':"
            f"b='120+80*sin((X+Y)/131)',"
            f"loop=loop=-1:size=1,trim=duration={duration:.3f},setpts=N/{FPS}/TB,"
            f"crop={WIDTH}:{HEIGHT}:x='trunc(240+230*sin(t*0.21))':y='trunc(160+150*sin(t*0.17+1))',"
            f"format=yuv420p"
        )
    if name == "shapes":
        # overlay re-evaluates x/y every frame (drawbox in FFmpeg 5.1 does not), so the boxes really move.
        colors = ["0xf4a261", "0x2a9d8f", "0xe9c46a", "0xe76f51", "0x8ecae6", "0xffb703"]
        parts = [f"gradients=s={size}:r={FPS}:d={duration:.3f}:c0=0x14213d:c1=0x3d405b:speed=0.02:seed={seed}[s0]"]
        for i, color in enumerate(colors):
            speed, y = rng.randint(60, 220), rng.randint(40, HEIGHT - 200)
            w, h = rng.randint(120, 260), rng.randint(90, 200)
            vy = rng.uniform(0.3, 1.2)
            parts.append(f"color=c={color}:s={w}x{h}:r={FPS}[b{i}]")
            parts.append(
                f"[s{i}][b{i}]overlay=x='mod({i * 230}+t*{speed},{WIDTH + w})-{w}':"
                f"y='{y}+60*sin(t*{vy:.2f}+{i})':shortest=1[s{i + 1}]"
            )
        return ";".join(parts) + f";[s{len(colors)}]null"
    if name == "bars":
        return f"smptehdbars=s={size}:r={FPS}:d={duration:.3f},scroll=horizontal=0.001"
    raise SystemExit(f"unknown background {name!r} (choose from {', '.join(BACKGROUNDS)})")


def _font_size_for(rows: Sequence[str]) -> int:
    font = ImageFont.truetype(str(FONT_FILE), FONT_SIZE)
    widest = max(font.getbbox(row)[2] for row in rows)
    if widest <= MAX_ROW_PX:
        return FONT_SIZE
    return math.floor(FONT_SIZE * MAX_ROW_PX / widest)


STYLE_OPTIONS: dict[Style, str] = {
    "box": "fontcolor=white:box=1:boxcolor=0x101010@1.0:boxborderw=12",
    "outline": "fontcolor=white:borderw=3:bordercolor=black",
    "halfbox": "fontcolor=white:box=1:boxcolor=black@0.5:boxborderw=12",
    "yellow": "fontcolor=0xffe000:borderw=3:bordercolor=black",
}


def caption_filters(captions: list[Caption], work: Path) -> list[str]:
    filters = []
    for ci, caption in enumerate(captions):
        size = _font_size_for(caption.rows)
        pitch = round(size * 1.5)
        # The last row sits at a fixed height in the bottom third; a first row goes one row pitch above it.
        bottom_y = HEIGHT - 76 - size
        for ri, row in enumerate(caption.rows):
            # textfile + expansion=none: the text reaches drawtext verbatim, no escaping of ' : % \ needed.
            row_file = work / f"cap{ci:03d}_{ri}.txt"
            row_file.write_text(row, encoding="utf-8")
            y = bottom_y - (len(caption.rows) - 1 - ri) * pitch
            filters.append(
                f"drawtext=fontfile='{FONT_FILE}':textfile='{row_file}':expansion=none:fontsize={size}:"
                f"{STYLE_OPTIONS[caption.style]}:x=(w-text_w)/2:y={y}:"
                f"enable='between(t,{caption.start_s:.3f},{caption.end_s:.3f})'"
            )
    return filters


def encode(
    out: Path,
    audio: Path | None,
    *,
    duration: float,
    video_chain: str | None,
    work: Path,
    faststart: bool = True,
) -> None:
    cmd = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    if audio is not None:
        cmd += ["-i", str(audio)]
    if video_chain is not None:
        graph = work / "graph.txt"
        graph.write_text(video_chain + "[v]", encoding="utf-8")
        cmd += ["-filter_complex_script", str(graph), "-map", "[v]"]
        # CRF 26 keeps caption edges sharp enough for OCR at ~250-400 kb/s over these smooth backgrounds;
        # two threads because the build machines are shared.
        cmd += ["-c:v", "libx264", "-preset", "medium", "-crf", "26", "-pix_fmt", "yuv420p", "-g", "50"]
        cmd += ["-threads", "2", "-r", str(FPS)]
    if audio is not None:
        cmd += ["-map", "0:a", "-c:a", "aac", "-b:a", "48k", "-ar", "48000", "-ac", "1"]
    cmd += ["-t", f"{duration:.3f}"]
    if faststart:
        cmd += ["-movflags", "+faststart"]
    cmd.append(str(out))
    subprocess.run(cmd, check=True)


def probe_duration(path: Path) -> float:
    result = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return round(float(result.stdout.strip()), 3)


# --------------------------------------------------------------------------------------------- one clip


def prepare_captions(script: ClipScript, rng: random.Random) -> list[Caption]:
    captions = [c for line in script.lines for c in split_into_captions(line, script.style)]
    inject_typos(captions, script.typo_rate, rng)
    for caption in captions:
        layout_rows(caption)
    return captions


def make_clip(script: ClipScript, out: Path, *, with_audio: bool = True, with_video: bool = True) -> dict[str, Any]:
    """Render one clip and write its truth JSON beside it; return the truth."""
    _require_tools()
    rng = random.Random(script.seed)
    captions = prepare_captions(script, rng)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="make_sample_clip-") as tmp:
        work = Path(tmp)
        wav, duration = build_audio(captions, script, rng, work)
        chain = None
        if with_video:
            chain = ",".join(
                [
                    background_filter(script.background, duration, script.seed),
                    *caption_filters(captions, work),
                ]
            )
        encode(out, wav if with_audio else None, duration=duration, video_chain=chain, work=work)
    truth = {
        "clip": out.name,
        "duration_s": probe_duration(out),
        "width": WIDTH,
        "height": HEIGHT,
        "fps": FPS,
        "voice": script.voice,
        "seed": script.seed,
        "captions": [
            {
                "index": i,
                "start_s": c.start_s,
                "end_s": c.end_s,
                "style": c.style,
                "displayed_text": " ".join(c.displayed_words),
                "spoken_text": " ".join(c.spoken_words),
                "typos": [
                    {
                        "word_index": t.word_index,
                        "displayed": t.displayed,
                        "spoken": t.spoken,
                        "kind": t.kind,
                        "typo_type": t.typo_type,
                    }
                    for t in c.typos
                ],
            }
            for i, c in enumerate(captions)
        ],
    }
    if with_video:
        truth_path = out.with_name(out.name.rsplit(".", 1)[0] + ".truth.json")
        truth_path.write_text(json.dumps(truth, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return truth


def _require_tools() -> None:
    missing = [tool for tool in ("espeak-ng", "ffmpeg", "ffprobe") if shutil.which(tool) is None]
    if missing or not FONT_FILE.exists():
        raise SystemExit(
            f"missing {', '.join(missing) or FONT_FILE}: apt-get install -y espeak-ng ffmpeg fonts-dejavu-core"
        )


def summary(truth: dict[str, Any]) -> str:
    typos = [t for c in truth["captions"] for t in c["typos"]]
    words = sum(len(c["displayed_text"].split()) for c in truth["captions"])
    kinds: dict[str, int] = {}
    for t in typos:
        kinds[t["typo_type"]] = kinds.get(t["typo_type"], 0) + 1
    detail = ", ".join(f"{k} {v}" for k, v in sorted(kinds.items()))
    return (
        f"{truth['duration_s']:5.1f} s  {len(truth['captions']):2d} captions  {words:3d} words  "
        f"{len(typos):2d} typos ({detail})"
    )


# --------------------------------------------------------------------------------------------- batch


def batch_script(index: int, base_seed: int) -> ClipScript:
    """A clip script from the built-in sentence banks: topic, sentences, voice and look vary by seed."""
    from sentence_banks import SENTENCE_BANKS

    seed = base_seed * 1000 + index
    rng = random.Random(seed)
    topic = rng.choice(sorted(SENTENCE_BANKS))
    sentences = rng.sample(SENTENCE_BANKS[topic], k=min(len(SENTENCE_BANKS[topic]), rng.randint(7, 10)))
    mixed_styles = rng.random() < 0.4
    style = rng.choice(STYLES)
    return ClipScript(
        clip=f"clip_{index:02d}_{topic}.mp4",
        lines=[ScriptLine(text=s, style=rng.choice(STYLES) if mixed_styles else None) for s in sentences],
        voice=rng.choice(BATCH_VOICES),
        rate=rng.randint(150, 175),
        seed=seed,
        background=rng.choice(BACKGROUNDS),
        style=style,
    )


def script_to_dict(script: ClipScript) -> dict[str, Any]:
    return {
        "clip": script.clip,
        "voice": script.voice,
        "rate": script.rate,
        "seed": script.seed,
        "background": script.background,
        "style": script.style,
        "typo_rate": script.typo_rate,
        "gap_s": list(script.gap_s),
        "lines": [{"text": line.text, **({"style": line.style} if line.style else {})} for line in script.lines],
    }


def run_batch(folder: Path, count: int, seed: int, overrides: dict[str, Any]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(1, count + 1):
        script = _override(batch_script(i, seed), overrides)
        # The script goes beside the clip, so any one generated clip can be rebuilt (or edited) on its own.
        script_path = folder / (script.clip.rsplit(".", 1)[0] + ".script.json")
        script_path.write_text(json.dumps(script_to_dict(script), indent=2) + "\n", encoding="utf-8")
        started = time.monotonic()
        truth = make_clip(script, folder / script.clip)
        print(
            f"[{i}/{count}] {script.clip:28s} {summary(truth)}  voice {script.voice}, {script.background}, "
            f"{script.style}  ({time.monotonic() - started:.1f} s)",
            flush=True,
        )


# ------------------------------------------------------------------------------------------ error-path media


def make_error_samples(folder: Path) -> None:
    """Media for the error paths: video without audio, audio without video, and a truncated MP4."""
    folder.mkdir(parents=True, exist_ok=True)
    script = ClipScript(
        clip="silent_video.mp4",
        lines=[ScriptLine(text="This clip has captions but no sound", typos=[])],
        seed=3,
        background="gradients",
        style="box",
        typo_rate=0.0,
    )
    make_clip(script, folder / "silent_video.mp4", with_audio=False)
    print(f"silent_video.mp4   {probe_duration(folder / 'silent_video.mp4'):.1f} s, video only")
    script.clip = "audio_only.m4a"
    script.lines = [ScriptLine(text="This recording has sound but no picture", typos=[])]
    make_clip(script, folder / "audio_only.m4a", with_video=False)
    print(f"audio_only.m4a     {probe_duration(folder / 'audio_only.m4a'):.1f} s, audio only")
    # Without +faststart the index (moov) sits at the end of the file, so its first 20 KB cannot be opened at
    # all: a decoder reports the file as corrupt at open time, which is what the error-path tests want.
    with tempfile.TemporaryDirectory(prefix="make_sample_clip-") as tmp:
        whole = Path(tmp) / "whole.mp4"
        script.clip = "whole.mp4"
        script.lines = [ScriptLine(text="This file will be cut short", typos=[])]
        rng = random.Random(script.seed)
        captions = prepare_captions(script, rng)
        work = Path(tmp)
        wav, duration = build_audio(captions, script, rng, work)
        chain = ",".join([background_filter("plasma", duration, 5), *caption_filters(captions, work)])
        encode(whole, wav, duration=duration, video_chain=chain, work=work, faststart=False)
        (folder / "corrupt.mp4").write_bytes(whole.read_bytes()[: 20 * 1024])
    print("corrupt.mp4        first 20 KB of an MP4 whose index is at the end")


# --------------------------------------------------------------------------------------------- CLI


def _override(script: ClipScript, overrides: dict[str, Any]) -> ClipScript:
    for key, value in overrides.items():
        if value is not None:
            setattr(script, key, value)
    return script


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("scripts", nargs="*", type=Path, help="clip scripts (JSON), see README.md")
    parser.add_argument("-o", "--out", type=Path, help="output MP4 (only with one script)")
    parser.add_argument("--out-dir", type=Path, help="folder for the MP4s (file names from the scripts)")
    parser.add_argument("--batch", type=Path, metavar="DIR", help="make --count clips from the built-in banks")
    parser.add_argument("--count", type=int, default=12)
    parser.add_argument("--error-samples", type=Path, metavar="DIR", help="write the error-path media there")
    parser.add_argument("--voice", help="espeak-ng voice, e.g. en, en-us, en-gb, en+f3, en+m3")
    parser.add_argument("--rate", type=int, help="speaking rate in words per minute (espeak-ng -s)")
    parser.add_argument("--seed", type=int, help="seed for typo picking, pauses and looks")
    parser.add_argument("--typo-rate", type=float, help="share of caption words given a typo (default 1/8)")
    parser.add_argument("--background", choices=BACKGROUNDS)
    parser.add_argument("--style", choices=STYLES, help="caption style for lines that do not set one")
    args = parser.parse_args(argv)
    overrides = {
        "voice": args.voice,
        "rate": args.rate,
        "typo_rate": args.typo_rate,
        "background": args.background,
        "style": args.style,
    }
    if args.error_samples:
        make_error_samples(args.error_samples)
    if args.batch:
        run_batch(args.batch, args.count, 7 if args.seed is None else args.seed, overrides)
    if args.out and len(args.scripts) != 1:
        parser.error("--out needs exactly one script")
    for script_path in args.scripts:
        script = _override(load_script(script_path), {**overrides, "seed": args.seed})
        out = args.out or (args.out_dir or Path.cwd()) / script.clip
        started = time.monotonic()
        truth = make_clip(script, out)
        print(f"{out}  {summary(truth)}  ({time.monotonic() - started:.1f} s)", flush=True)
    if not (args.scripts or args.batch or args.error_samples):
        parser.error("give clip scripts, --batch DIR or --error-samples DIR")
    return 0


if __name__ == "__main__":
    sys.exit(main())
