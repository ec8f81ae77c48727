#!/usr/bin/env bash
# Prompts are synthesized with Debian's espeak-ng and converted with Debian's sox (8 kHz mono
# 16-bit WAV for Asterisk; MP3 uploads need libsox-fmt-mp3). Install them if missing.
set -eu
have() {
  command -v espeak-ng >/dev/null 2>&1 && command -v sox >/dev/null 2>&1 \
    && sox -h 2>/dev/null | grep -q 'AUDIO FILE FORMATS:.* mp3'
}
if have; then exit 0; fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian's espeak-ng and sox for the IVR prompts..."
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq espeak-ng sox libsox-fmt-mp3 >/dev/null
fi
have || { echo "ERROR: espeak-ng or sox (with MP3) is missing: apt-get install espeak-ng sox libsox-fmt-mp3" >&2; exit 1; }
