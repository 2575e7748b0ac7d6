#!/usr/bin/env bash
# OpenAPI-driven fuzzing of the device API: schemathesis (from PyPI) reads
# the document the server serves and sends what it generates from it, on a
# fresh SQLite database with one patient and pump. Fails on any server
# error (5xx) and on any answer that does not match the document.
#
# Usage: tests/api-fuzz/run.sh path/to/infusion [max-examples]
set -euo pipefail
bin="$(realpath "$1")"
examples="${2:-200}"
here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'kill "${server:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT

venv="${SCHEMATHESIS_VENV:-$work/venv}"
if [ ! -x "$venv/bin/schemathesis" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "schemathesis==4.32.5"
fi

db="sqlite://$work/fuzz.db"
password="fuzzing password 1"
mac="02:00:00:00:0F:01"
echo "$password" | "$bin" --database-url "$db" admin create-physician \
  --username doc --first-name Doc --last-name Fuzz --institution Fuzz --password-stdin >/dev/null
echo "$password" | "$bin" --database-url "$db" admin create-patient \
  --username pat --first-name Pat --last-name Fuzz --physician doc --password-stdin >/dev/null
"$bin" --database-url "$db" admin bind-device --patient pat --mac "$mac" >/dev/null
"$bin" --database-url "$db" admin set-limits --patient pat --min-rate-ul-h 100 --max-rate-ul-h 200000 --max-volume-ul 1000000 >/dev/null
"$bin" --database-url "$db" admin set-prescription --patient pat --volume-ul 5000 --rate-ul-h 4000 >/dev/null

# The paper's login, so that the hooks can log in without the device
# secret; a proof, when sent, is still checked.
"$bin" --database-url "$db" serve --bind 127.0.0.1:0 --paper-login >"$work/serve.out" 2>"$work/serve.log" &
server=$!
for _ in $(seq 1 100); do
  grep -q '^listening on ' "$work/serve.out" 2>/dev/null && break
  sleep 0.1
done
base="$(sed -n 's/^listening on //p' "$work/serve.out")"
[ -n "$base" ] || { cat "$work/serve.log"; exit 1; }

export FUZZ_BASE="$base" FUZZ_USERNAME=pat FUZZ_PASSWORD="$password" FUZZ_MAC="$mac"
export PYTHONPATH="$here" SCHEMATHESIS_HOOKS=hooks
"$venv/bin/schemathesis" run "$base/api/v1/openapi.json" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance \
  --max-examples "$examples" --seed 1 --no-color
if grep -q 'panicked' "$work/serve.log"; then
  echo "the server panicked:"; grep -A5 panicked "$work/serve.log"; exit 1
fi
