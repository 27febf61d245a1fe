#!/usr/bin/env bash
# pgbench running authd's one-statement refresh (benches/refresh.pgbench) at 16 chains, on a
# fresh database migrated by authd: the floor for authd-load's Refresh row on PostgreSQL.
#   bash benches/refresh-floor.sh            # needs PostgreSQL on 127.0.0.1:5432, pgbench
#   CLIENTS=16 SECONDS_=10 bash benches/refresh-floor.sh
#   AUTHD_BIN=/path/to/authd bash ...      # the binary that migrates (default target/release/authd)
# authd-load's refresh row on PostgreSQL runs it itself, before and after the row.
set -euo pipefail
cd "$(dirname "$0")/.."
CLIENTS="${CLIENTS:-16}"
SECONDS_="${SECONDS_:-10}"
AUTHD_BIN="${AUTHD_BIN:-target/release/authd}"
db="authd_pgbench_$$"
psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE $db"
trap 'psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)"' EXIT
AUTHD_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db" "$AUTHD_BIN" migrate >/dev/null
# One user, session and first refresh token (c<client>-0) per pgbench client.
psql -h 127.0.0.1 -U postgres -d "$db" -q <<SQL
INSERT INTO users (id, username, username_key, password_hash, created_at, disabled, key_version, roles)
  SELECT gen_random_uuid(), 'pgbench-' || c, 'pgbench-' || c, 'x', now(), false, 2, '[]'
  FROM generate_series(0, $CLIENTS - 1) c;
INSERT INTO sessions (id, user_id, audience, created_at, expires_at)
  SELECT gen_random_uuid(), id, 'authd', now(), now() + interval '1 day' FROM users;
INSERT INTO refresh_tokens (token_hash, session_id, issued_at, expires_at, superseded)
  SELECT 'c' || substr(u.username, 9) || '-0', s.id, now(), now() + interval '1 day', false
  FROM sessions s JOIN users u ON u.id = s.user_id;
SQL
pgbench -h 127.0.0.1 -U postgres -n -M prepared -D n=0 -c "$CLIENTS" -j 2 -T "$SECONDS_" \
  -f benches/refresh.pgbench "$db" | grep -E "tps|latency|transactions"
# Every round must have spent a token: as many spent as transactions.
psql -h 127.0.0.1 -U postgres -d "$db" -Atc \
  "SELECT 'tokens spent: ' || count(*) FROM refresh_tokens WHERE spent_at IS NOT NULL"
