#!/usr/bin/env bash
# Lint the deployment: hadolint on every service Dockerfile, checkov over infra/terraform and the Dockerfiles.
# checkov pins many old packages, so it lives in its own venv under .cache (created on first use), never in .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

CHECKOV_VERSION=3.3.30
CHECKOV_VENV=.cache/checkov-venv
HADOLINT=.venv/bin/hadolint

mapfile -t dockerfiles < <(find services -mindepth 2 -maxdepth 2 -name Dockerfile | sort)
if ((${#dockerfiles[@]} == 0)); then
  echo "lint-infra: no services/*/Dockerfile found" >&2
  exit 1
fi

echo "== hadolint (${#dockerfiles[@]} Dockerfiles)"
"$HADOLINT" --failure-threshold info "${dockerfiles[@]}"

stamp="$CHECKOV_VENV/.checkov-$CHECKOV_VERSION"
if [[ ! -f "$stamp" ]]; then
  echo "== creating $CHECKOV_VENV (checkov $CHECKOV_VERSION, once)"
  rm -rf "$CHECKOV_VENV"
  python3 -m venv "$CHECKOV_VENV"
  "$CHECKOV_VENV/bin/pip" install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION"
  touch "$stamp"
fi

# --skip-download: no policy metadata fetched from the vendor's platform (this must run offline).
checkov_args=(--quiet --compact --skip-download --download-external-modules false)

echo "== checkov terraform (infra/terraform)"
"$CHECKOV_VENV/bin/checkov" "${checkov_args[@]}" --framework terraform -d infra/terraform

echo "== checkov dockerfile"
file_args=()
for f in "${dockerfiles[@]}"; do file_args+=(-f "$f"); done
"$CHECKOV_VENV/bin/checkov" "${checkov_args[@]}" --framework dockerfile "${file_args[@]}"

echo "lint-infra: clean"
