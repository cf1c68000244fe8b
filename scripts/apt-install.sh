#!/usr/bin/env bash
# Install the Debian packages named as arguments when missing: with apt-get as root, else print the command.
set -euo pipefail
missing=()
for p in "$@"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  echo "setup: installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # A failed install must not stop `make test`: the tests use committed media and wheels only. Say so loudly.
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }; then
    echo "setup: WARNING: could not install ${missing[*]} (the sample generator needs espeak-ng and ffmpeg)" >&2
  fi
else
  echo "setup: missing Debian packages: ${missing[*]}" >&2
  echo "setup: run: sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
fi
