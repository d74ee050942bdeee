#!/usr/bin/env bash
# The whole job on bundled benign media, in about two minutes: a case is opened, the
# victim's photos, video, sound and text are registered (fingerprints only), a local forum
# with planted copies is crawled, the queue is worked, a notice drafted, the month's
# figures plotted and the audit chain verified. Everything lives in .demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
export ANSIM_HOME="$PWD/.demo/home" ANSIM_ANALYST="demo-analyst"
unset ANSIM_DB_URL
ansim=.venv/bin/ansim
python=.venv/bin/python
rm -rf .demo && mkdir -p .demo
steps=14
n=0
step() { n=$((n + 1)); printf '\n\033[1m[%d/%d] %s\033[0m\n' "$n" "$steps" "$*"; }
json_field() { $python -c "import json,sys; print(json.load(sys.stdin)$1)"; }

step "A fresh ansim home: database, schema and an encryption key readable only by you."
$ansim init

step "A support case is opened for the victim; the contact is stored encrypted."
case_id=$($ansim case open --type stalking --pseudonym "Blue" --contact-file - \
  --json <<<"010-0000-0000 (demo)" | json_field '["case_id"]')
echo "opened case $case_id"
$ansim case service "$case_id" --kind counseling --note-file - <<<"first call"

step "What the victim reported (made from bundled public-domain media), and a demo forum with copies."
$python samples/make_demo.py samples .demo

step "Registering it: 2 photos, a video, a sound clip and a Korean post; only fingerprints are kept."
$ansim ref add "$case_id" .demo/intake/photos .demo/intake/clip.mp4 .demo/intake/song.ogg \
  .demo/intake/post.txt

step "The references and their fingerprints in the banks (ansim ref list)."
$ansim ref list --case "$case_id"

step "The demo forum is served on 127.0.0.1 (a crop, a letterboxed clip, a pitch-shifted excerpt, an evasive post, and unrelated media)."
port=$($python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
$python -m http.server --bind 127.0.0.1 --directory .demo/site "$port" >.demo/site.log 2>&1 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
$python - "$port" <<'PY'
import sys, time, urllib.request
for _ in range(100):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/index.html", timeout=1)
        break
    except OSError:
        time.sleep(0.1)
PY
echo "serving http://127.0.0.1:$port/"

step "Crawling it: every page, image, video, sound and text is fingerprinted and matched."
$ansim crawl run --seeds "http://127.0.0.1:$port/index.html" --allow-loopback --delay 0 \
  --hash-processes 1 --max-pages 50

step "The takedown queue of the case: one item per copy found."
$ansim queue list --case "$case_id"

first=$($ansim queue list --case "$case_id" --json | json_field '[0]["id"]')
step "One item up close: where, which reference, why it matched, the sealed evidence, its history."
$ansim queue show "$first"

step "An analyst confirms each match (no notice goes out before that)."
for item in $($ansim queue list --case "$case_id" --status new --json \
  | $python -c 'import json,sys; print(" ".join(str(i["id"]) for i in json.load(sys.stdin)))'); do
  $ansim queue confirm "$item" --note-file - <<<"checked by eye: the reported material"
done

step "A removal notice to the host's abuse contact, in Korean, plus the regulator's CSV (nothing is sent)."
$ansim host set 127.0.0.1 --abuse-email abuse@forum.example --lang ko
$ansim notice draft --out .demo/notices --sender takedown@center.example --org "데모 지원센터"

step "The figures of the case, with a plot (ansim report --plot)."
$ansim report --case "$case_id" --plot .demo/report.png

step "The audit chain: every action above, hash-chained and verified."
$ansim audit verify

step "The review console: two analyst accounts for the server (the two-person rule counts accounts)."
printf 'demo-review-pass-1\n' | $ansim user add reviewer1 --role analyst --password-stdin
printf 'demo-review-pass-2\n' | $ansim user add reviewer2 --role analyst --password-stdin
echo "serve this demo home: ANSIM_HOME=$ANSIM_HOME $ansim serve   (then open http://127.0.0.1:8470/)"
echo
echo "Done. Files: .demo/notices/ (the .eml notice and regulator.csv), .demo/report.png, .demo/home/logs/."
