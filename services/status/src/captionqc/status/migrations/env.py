from captionqc.runtime.migrations import run_env
from captionqc.status.tables import metadata

run_env(metadata)
