#!/usr/bin/env bash
# Writes infra/docker/requirements/<service>.txt: the slice of the workspace lock that one service's image
# needs, with the same pins and hashes as requirements.lock.txt. Run it after `uv lock` (the Makefile's `lock`
# target does); tests/test_infra_images.py fails when a slice drifts from requirements.lock.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."

UV=${UV:-uv}
for service in gateway status ocr asr crosscheck; do
  "$UV" export --frozen --package "captionqc-$service" --no-dev --no-emit-workspace \
    --format requirements-txt --quiet -o "infra/docker/requirements/$service.txt"
done
