"""captionqc.cli."""
