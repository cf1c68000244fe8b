"""captionqc.asr."""
