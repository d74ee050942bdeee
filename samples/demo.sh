#!/usr/bin/env bash
# The main job on bundled sample images: open a case, register what the victim reported,
# scan a folder of collected (simulated) reposts, and work the takedown queue.
set -euo pipefail
cd "$(dirname "$0")/.."
export ANSIM_HOME="$PWD/.demo/home" ANSIM_ANALYST="demo-analyst"
unset ANSIM_DB_URL
ansim=.venv/bin/ansim
rm -rf .demo && mkdir -p .demo

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "ansim init"
$ansim init

step "open a support case"
case_id=$($ansim case open --type digital-sex-crime --pseudonym "Blue" --contact "010-0000-0000 (demo)" --json \
  | .venv/bin/python -c 'import json,sys; print(json.load(sys.stdin)["case_id"])')
echo "case $case_id"
$ansim case service "$case_id" --kind counseling --note "first call"

step "register the three images the victim reported (fingerprints only)"
$ansim ref add "$case_id" samples/images/kingfisher.jpg samples/images/macaws.jpg samples/images/fruit_stand.jpg

step "simulate a folder of collected reposts"
.venv/bin/python samples/make_reposts.py samples/images .demo/collected

step "scan it (exit code 1 = some files could not be read, which this folder has on purpose)"
$ansim scan .demo/collected || true

step "the takedown queue"
$ansim queue list --case "$case_id"
$ansim queue confirm 1 --note "checked by eye: same photo"
$ansim queue show 1

step "the audit chain"
$ansim audit verify

step "the review console: two analyst accounts for the server (two-person rule needs both)"
printf 'demo-review-pass-1\n' | $ansim user add reviewer1 --role analyst --password-stdin
printf 'demo-review-pass-2\n' | $ansim user add reviewer2 --role analyst --password-stdin
echo "serve this demo home: ANSIM_HOME=$ANSIM_HOME $ansim serve   (then open http://127.0.0.1:8470/)"
