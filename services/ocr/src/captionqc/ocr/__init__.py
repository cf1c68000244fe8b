"""captionqc.ocr."""
