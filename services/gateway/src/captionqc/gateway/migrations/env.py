from captionqc.gateway.tables import metadata
from captionqc.runtime.migrations import run_env

run_env(metadata)
