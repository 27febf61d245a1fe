#!/usr/bin/env bash
# A short fuzz run over the committed corpus, for CI: every cargo-fuzz target for
# FUZZ_SECONDS (default 20) each; fails on a crash, a panic or a forgery the oracle
# catches. New inputs go to a scratch directory, so the committed corpus is left as it is.
#
#   fuzz/run.sh                      # every target, 20 s each
#   FUZZ_SECONDS=600 fuzz/run.sh verify_token
#
# See docs/fuzzing.md. Works on the stable toolchain: RUSTC_BOOTSTRAP lets it take the
# sanitizer flags cargo-fuzz passes.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
seconds="${FUZZ_SECONDS:-20}"
export RUSTC_BOOTSTRAP=1
# Sanitizer builds stay in fuzz/target, even under a CI that points CARGO_TARGET_DIR at the
# main workspace's target.
unset CARGO_TARGET_DIR

if ! cargo fuzz --version 2>/dev/null | grep -q " ${CARGO_FUZZ_VERSION}\$"; then
  cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi

# As `--locked` for the main workspace: refuse a stale fuzz/Cargo.lock instead of updating it.
cargo metadata --locked --format-version 1 --manifest-path fuzz/Cargo.toml >/dev/null

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi

cargo fuzz build

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for target in "${targets[@]}"; do
  args=(-max_total_time="$seconds" -max_len=4096 -timeout=10 -print_final_stats=1)
  case "$target" in
    verify_claims | parse_jwks) args+=(-dict=fuzz/dicts/json.dict) ;;
  esac
  mkdir -p "$scratch/$target"
  printf '\n== fuzz %s (%ss)\n' "$target" "$seconds"
  # The first directory receives new inputs; the committed corpus is only read.
  log="$scratch/$target.log"
  if ! cargo fuzz run "$target" "$scratch/$target" "fuzz/corpus/$target" -- "${args[@]}" >"$log" 2>&1; then
    tail -n 60 "$log" >&2
    echo "fuzz target $target failed: the input is in fuzz/artifacts/$target/" >&2
    exit 1
  fi
  grep -aE '^#[0-9]+[[:space:]]+(INITED|DONE)|^stat::(number_of_executed_units|average_exec_per_sec)' "$log"
done
echo "fuzzing: ${#targets[@]} targets, ${seconds}s each, no crash"
