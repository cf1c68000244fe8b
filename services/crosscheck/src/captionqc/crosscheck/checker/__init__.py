"""The caption checker: a pure library that cross-checks OCR'd captions against ASR words.

    from captionqc.crosscheck.checker import CheckerConfig, check_captions
    result = check_captions(segments, words, options, CheckerConfig())

NG words are reported as kind ``wrong_word`` with ``evidence["ng_word"] = True`` and confidence 1.0: they are
real words that must not be shown, so switching ``wrong_word`` off in the job's checks silences them too.
"""

from captionqc.crosscheck.checker.check import CheckResult, check_captions
from captionqc.crosscheck.checker.config import CheckerConfig
from captionqc.crosscheck.checker.lexicon import warm_up

__all__ = ["CheckResult", "CheckerConfig", "check_captions", "warm_up"]
