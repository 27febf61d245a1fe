#!/usr/bin/env bash
# Validate over native gRPC and over gRPC-Web (issue 13), driven by h2load in issue 11's
# closed loop (-c8 -m16), every row as a ratio to the bare tonic floor measured in the same
# run, in alternating rounds. h2load costs far less CPU per call than authd-load's tonic
# client, so these ratios do not crowd towards 1 as authd-load's do on a small machine.
#
#   cargo build --release -p authd -p authd-load
#   bash benches/h2load.sh                     # authd signs with its default Ed25519 key
#   HS256=1 bash benches/h2load.sh             # authd signs with AUTHD_JWT_SECRET
#   ROUNDS=3 SECONDS_=5 CLIENTS=8 STREAMS=16 H1_CLIENTS=64 bash benches/h2load.sh  # defaults
#   AUTHD_BIN=target/release/authd LOAD_BIN=target/release/authd-load bash benches/h2load.sh
#
# Rows (each ROUNDS slices of SECONDS_, the order reversed every other round):
#   floor        authd-load --serve-floor-standalone: bare tonic answering a copy of authd's
#                Validate reply, native gRPC, h2 -c$CLIENTS -m$STREAMS
#   native       authd Validate, native gRPC, same load
#   web-h2       authd Validate, gRPC-Web (application/grpc-web+proto) over HTTP/2, same load
#   web-h1       authd Validate, gRPC-Web over HTTP/1.1: one call at a time per connection
#                (no pipelining, as browsers do), so more connections: -c$H1_CLIENTS -m1
# Every reply is checked: one curl per row must show grpc-status 0 and authd's reply, and
# each timed h2load run must have received that reply's bytes for every call it counts
# (an error is a trailers-only reply, HTTP 200 with no body: h2load alone would count it).
# Needs h2load (apt-get install nghttp2-client), curl and python3.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${ROUNDS:-3}"
SECONDS_="${SECONDS_:-5}"
CLIENTS="${CLIENTS:-8}"
STREAMS="${STREAMS:-16}"
H1_CLIENTS="${H1_CLIENTS:-64}"
authd_bin="${AUTHD_BIN:-target/release/authd}"  # read before AUTHD_* is dropped below
load_bin="${LOAD_BIN:-target/release/authd-load}"
SECRET="authd-h2load-bench-secret-0123456789abcdef"
METHOD=/authd.v1.AuthService/Validate

for tool in h2load curl python3; do
  command -v "$tool" >/dev/null || { echo "$tool missing (h2load: apt-get install nghttp2-client)" >&2; exit 1; }
done
for bin in "$authd_bin" "$load_bin"; do
  [[ -x $bin ]] || { echo "$bin missing: cargo build --release -p authd -p authd-load" >&2; exit 1; }
done

work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# authd with its defaults, not this shell's settings: every AUTHD_* variable dropped.
while read -r name; do unset "$name"; done < <(compgen -e | grep '^AUTHD_' || true)
settings=(
  AUTHD_LISTEN=127.0.0.1:0
  "AUTHD_DATABASE_URL=sqlite://$work/authd.db?mode=rwc"
  AUTHD_ALLOW_REGISTRATION=true
  AUTHD_LOG_FORMAT=json
  RUST_LOG=info
)
signing=Ed25519
if [[ -n ${HS256:-} ]]; then
  settings+=("AUTHD_JWT_SECRET=$SECRET")
  signing=HS256
fi
env "${settings[@]}" "$authd_bin" serve >"$work/authd.log" 2>&1 &
authd_pid=$!
pids+=("$authd_pid")

# Wait up to a minute for the address in log $1: authd's `authd serving gRPC` JSON line, or
# the floor's `listening ADDR`.
wait_for_addr() {
  python3 - "$1" <<'PY'
import json, sys, time
path = sys.argv[1]
def addr(line):
    if line.startswith("listening "):
        return line.split()[1]
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event.get("message") == "authd serving gRPC" and event.get("addr")
for _ in range(600):
    for line in open(path):
        if found := addr(line):
            print(found)
            sys.exit(0)
    time.sleep(0.1)
sys.exit(f"no address in {path} after a minute:\n" + open(path).read()[-2000:])
PY
}
authd="$(wait_for_addr "$work/authd.log")"

# One account, its access token, the framed ValidateRequest and authd's reply to it.
"$load_bin" --h2load-fixture "$work/fixture" --authd-addr "$authd"
"$load_bin" --serve-floor-standalone "$work/fixture/reply.hex" >"$work/floor.log" 2>&1 &
floor_pid=$!
pids+=("$floor_pid")
floor="$(wait_for_addr "$work/floor.log")"
body="$work/fixture/validate.grpc"

native_headers=(-H 'content-type: application/grpc' -H 'te: trailers')
web_headers=(-H 'content-type: application/grpc-web+proto' -H 'x-grpc-web: 1')
rows=(floor native web-h2 web-h1)
declare -A label=(
  [floor]="floor: bare tonic, native gRPC"
  [native]="authd native gRPC"
  [web-h2]="authd gRPC-Web over HTTP/2"
  [web-h1]="authd gRPC-Web over HTTP/1.1"
)
declare -A load=(
  [floor]="h2 -c$CLIENTS -m$STREAMS" [native]="h2 -c$CLIENTS -m$STREAMS"
  [web-h2]="h2 -c$CLIENTS -m$STREAMS" [web-h1]="h1 -c$H1_CLIENTS -m1"
)
declare -A pid_of=([floor]=$floor_pid [native]=$authd_pid [web-h2]=$authd_pid [web-h1]=$authd_pid)

# The curl and h2load arguments of a row.
curl_args() {
  case "$1" in
    floor) echo --http2-prior-knowledge native "http://$floor$METHOD" ;;
    native) echo --http2-prior-knowledge native "http://$authd$METHOD" ;;
    web-h2) echo --http2-prior-knowledge web "http://$authd$METHOD" ;;
    web-h1) echo --http1.1 web "http://$authd$METHOD" ;;
  esac
}
h2load_args() {
  local row="$1"
  read -r _ kind url < <(curl_args "$row")
  if [[ $row == web-h1 ]]; then
    printf '%s\n' --h1 -c "$H1_CLIENTS" -m 1
  else
    printf '%s\n' -c "$CLIENTS" -m "$STREAMS"
  fi
  if [[ $kind == web ]]; then printf '%s\n' "${web_headers[@]}"; else printf '%s\n' "${native_headers[@]}"; fi
  printf '%s\n' -d "$body" "$url"
}

# Check one reply of each row with curl: grpc-status 0 (in the trailers, or in gRPC-Web's
# trailer frame), and a message that is authd's reply. Prints the body bytes per reply.
declare -A reply_bytes
for row in "${rows[@]}"; do
  read -r version kind url < <(curl_args "$row")
  headers=("${native_headers[@]}")
  [[ $kind == web ]] && headers=("${web_headers[@]}")
  curl -sS "$version" "${headers[@]}" --data-binary "@$body" -D "$work/$row.head" -o "$work/$row.body" "$url"
  reply_bytes[$row]="$(python3 - "$work/$row.head" "$work/$row.body" "$work/fixture/reply.hex" "$row" <<'PY'
import struct, sys
head, body, reply_hex, row = sys.argv[1:]
head = open(head, encoding="latin-1").read()
data, reply = open(body, "rb").read(), bytes.fromhex(open(reply_hex).read().strip())
messages, status = [], None
i = 0
while i + 5 <= len(data):
    flag, size = data[i], struct.unpack(">I", data[i + 1:i + 5])[0]
    chunk = data[i + 5:i + 5 + size]
    if flag & 0x80:  # gRPC-Web: the trailers, as a last frame of the body
        for line in chunk.decode("latin-1").split("\r\n"):
            if line.lower().startswith("grpc-status:"):
                status = line.split(":", 1)[1].strip()
    else:
        messages.append(chunk)
    i += 5 + size
for line in head.splitlines():  # headers, and curl's trailers after them
    if line.lower().startswith("grpc-status:"):
        status = line.split(":", 1)[1].strip()
if status != "0" or messages != [reply]:
    sys.exit(f"{row}: grpc-status {status!r}, {len(messages)} message(s), "
             f"{'not ' if messages != [reply] else ''}authd's reply; head:\n{head}")
print(len(data))
PY
)"
done

# h2load over one slice: "calls server_cpu_ticks client_cpu_seconds". Fails on any failed,
# errored or non-2xx call, and when the body bytes received are not the checked reply's for
# every call.
run_h2load() {
  local row="$1" seconds="$2" args out before after
  mapfile -t args < <(h2load_args "$row")
  read -r -a before <"/proc/${pid_of[$row]}/stat"
  local TIMEFORMAT='%3U %3S'
  { time h2load -D "$seconds" "${args[@]}" >"$work/h2load.out" 2>&1; } 2>"$work/h2load.cpu" ||
    { cat "$work/h2load.out" >&2; return 1; }
  read -r -a after <"/proc/${pid_of[$row]}/stat"
  python3 - "$row" "${reply_bytes[$row]}" \
    "$(( after[13] + after[14] - before[13] - before[14] ))" "$work/h2load.out" "$work/h2load.cpu" <<'PY'
import re, sys
row, expected, ticks = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
out = open(sys.argv[4]).read()
client_cpu = sum(map(float, open(sys.argv[5]).read().split()))
req = re.search(r"requests: (\d+) total, \d+ started, (\d+) done, (\d+) succeeded, "
                r"(\d+) failed, (\d+) errored, (\d+) timeout", out)
codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
data = re.search(r"traffic: .*\((\d+)\) data", out)
if not (req and codes and data):
    sys.exit(f"{row}: cannot read h2load's output:\n{out}")
_, ok, failed, errored, timeout = map(int, req.groups()[1:])
# (A reply whose headers came in as h2load stopped has a status code but is not done.)
ok_codes, *other_codes = map(int, codes.groups())
if failed or errored or timeout or any(other_codes) or ok_codes < ok or ok == 0:
    sys.exit(f"{row}: failed calls:\n{out}")
# The few calls still in flight when h2load stops may have part of their body counted.
per_call = int(data.group(1)) / ok
if abs(per_call - expected) > 0.01 * expected:
    sys.exit(f"{row}: {per_call:.1f} body bytes per call, not {expected}: some replies "
             f"were not authd's (errors?)\n{out}")
print(ok, ticks, client_cpu)
PY
}

load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
echo "warming up..." >&2
for row in "${rows[@]}"; do run_h2load "$row" 1 >/dev/null || exit 1; done
declare -A calls cpu client_cpu per_round
for row in "${rows[@]}"; do calls[$row]=0; cpu[$row]=0; client_cpu[$row]=0; per_round[$row]=""; done
for round in $(seq 1 "$ROUNDS"); do
  order=("${rows[@]}")
  (( round % 2 == 0 )) && order=(web-h1 web-h2 native floor)
  for row in "${order[@]}"; do
    echo "round $round/$ROUNDS: $row" >&2
    result="$(run_h2load "$row" "$SECONDS_")" || exit 1
    read -r n ticks seconds <<<"$result"
    calls[$row]=$(( calls[$row] + n ))
    cpu[$row]=$(( cpu[$row] + ticks ))
    client_cpu[$row]="$(python3 -c "print(${client_cpu[$row]} + $seconds)")"
    per_round[$row]+="$(( n / SECONDS_ )) "
  done
done
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

echo "benches/h2load.sh: $authd_bin ($signing, SQLite, RUST_LOG=info); $(nproc) cores;" \
  "$ROUNDS alternating rounds x ${SECONDS_} s per row; h2load one thread; load average" \
  "$load_before before, $load_after after"
echo "Validate reply: ${reply_bytes[native]} body bytes native, ${reply_bytes[web-h2]} gRPC-Web (with its trailer frame)"
echo
for row in "${rows[@]}"; do
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$row" "${label[$row]}" "${load[$row]}" \
    "${calls[$row]}" "${cpu[$row]}" "${client_cpu[$row]}" "${per_round[$row]}"
done >"$work/results.tsv"
python3 - "$ROUNDS" "$SECONDS_" "$(getconf CLK_TCK)" "$work/results.tsv" <<'PY'
import sys
rounds, seconds, hz = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
rows = [line.rstrip("\n").split("\t") for line in open(sys.argv[4])]
rate = {r[0]: int(r[3]) / (rounds * seconds) for r in rows}
head = ("row", "load", "calls/s", "ratio to floor", "web/native", "srv us/call",
        "cli us/call", "calls/s per round")
lines = [head]
for r, label, load, n, ticks, client, per_round in rows:
    lines.append((
        label, load, f"{rate[r]:.0f}",
        "-" if r == "floor" else f"{rate[r] / rate['floor']:.2f}",
        f"{rate[r] / rate['native']:.2f}" if r.startswith("web") else "-",
        f"{int(ticks) / hz * 1e6 / int(n):.1f}",
        f"{float(client) * 1e6 / int(n):.1f}",
        " / ".join(per_round.split()),
    ))
widths = [max(len(l[i]) for l in lines) for i in range(len(head))]
for l in lines:
    print("  ".join(c.ljust(w) if i in (0, 1, 7) else c.rjust(w)
                    for i, (c, w) in enumerate(zip(l, widths))).rstrip())
PY
