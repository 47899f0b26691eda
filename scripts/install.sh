#!/usr/bin/env bash
# `make install`: build and install the extension into the PostgreSQL 18 in use.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
cd "$PGSE_ROOT"
PGC=$(find_pg_config)
cargo pgrx install --release --pg-config "$PGC"
