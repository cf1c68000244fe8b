from captionqc.runtime.migrations import run_env
from captionqc.runtime.tenants.tables import metadata

run_env(metadata)
