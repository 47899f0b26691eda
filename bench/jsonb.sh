#!/usr/bin/env bash
# Memory of the JSONB functions on a 10 MB document (goal: peak memory per call <= 3x the
# document). Each call runs in a fresh backend that first reads the document's TOAST pages (so the
# shared buffers it maps are already counted) and loads the library, then resets the kernel's peak
# resident set (/proc/PID/clear_refs, 5) and runs the call; the figure is the peak's growth
# (VmHWM after - VmRSS before), against the document's size. Core's `||` on the same document and
# a bare detoast (jsonb_typeof) are measured the same way. Run by scripts/bench.sh after
# bench/jsonb.sql.
set -euo pipefail
port=$1
. "$(dirname "$0")/_pgbench.sh"
n=$(awk -v s="${BENCH_SCALE:-1}" 'BEGIN {n = int(90000 * s); print (n < 5000) ? 5000 : n}')
q -c "CREATE TABLE bench.big (id int PRIMARY KEY, doc jsonb)" \
  -c "ALTER TABLE bench.big ALTER doc SET STORAGE EXTERNAL" \
  -c "INSERT INTO bench.big
      SELECT 1, jsonb_object_agg('k' || i, jsonb_build_object('id', i, 'name', 'user ' || i,
                 'tags', jsonb_build_array('a', 'b' || i % 7), 'score', i * 1.5, 'active', i % 2 = 0))
      FROM generate_series(1, $n) i" \
  -c "INSERT INTO bench.big SELECT 2, jsonb_set(doc, '{k7,name}', '\"changed\"') - 'k9' FROM bench.big WHERE id = 1" \
  -c "CREATE FUNCTION bench.status_kb(field text) RETURNS bigint LANGUAGE sql AS
      \$\$SELECT substring(pg_read_file('/proc/' || pg_backend_pid() || '/status') FROM field || ':\\s+(\\d+)')::bigint\$\$" \
  -c "CREATE FUNCTION bench.reset_peak() RETURNS void LANGUAGE plpgsql AS \$\$
      BEGIN
        EXECUTE format('COPY (SELECT 5) TO %L', '/proc/' || pg_backend_pid() || '/clear_refs');
        PERFORM set_config('bench.rss0', bench.status_kb('VmRSS')::text, false);
      END \$\$" \
  -c "CREATE FUNCTION bench.warm() RETURNS void LANGUAGE plpgsql AS \$\$
      BEGIN
        EXECUTE format('SELECT sum(length(chunk_data)) FROM %s',
                       (SELECT reltoastrelid::regclass FROM pg_class WHERE oid = 'bench.big'::regclass));
        PERFORM storage.jsonb_merge_deep('{\"a\": 1}', '{\"b\": [1.5]}'), storage.jsonb_diff('{\"a\": 1}', '{}'),
                storage.jsonb_merge_patch('{}', '{\"a\": null}'),
                storage.jsonb_patch('{}', '[{\"op\": \"add\", \"path\": \"/a\", \"value\": 1}]');
      END \$\$" >/dev/null
doc_kb=$(q -c "SELECT pg_column_size(doc) / 1024 FROM bench.big WHERE id = 1")
# peak_kb QUERY: the peak growth of one call in a fresh backend
peak_kb() {
  q -c "SELECT bench.warm()" -c "SELECT bench.reset_peak()" -c "$1" \
    -c "SELECT bench.status_kb('VmHWM') - current_setting('bench.rss0')::bigint" | tail -1
}
from="FROM bench.big WHERE id = 1"
floor=$(peak_kb "SELECT jsonb_typeof(doc) $from")
core=$(peak_kb "SELECT pg_column_size(doc || '{\"x\": 1}') $from")
mem() { q -c "SELECT bench.record('$1', $2 / 1024.0, $doc_kb / 1024.0, $2::float8 / $doc_kb, NULLIF('$3', ''), 'MB')"; }
mem "peak memory: jsonb_merge_deep on a ${doc_kb} kB document vs the document" \
  "$(peak_kb "SELECT pg_column_size(storage.jsonb_merge_deep(doc, '{\"x\": 1, \"k5\": {\"id\": 0}}')) $from")" '<= 3'
mem "peak memory: jsonb_merge_patch on it vs the document" \
  "$(peak_kb "SELECT pg_column_size(storage.jsonb_merge_patch(doc, '{\"k5\": null, \"k6\": {\"tags\": null}}')) $from")" '<= 3'
mem "peak memory: jsonb_patch (3 operations) on it vs the document" \
  "$(peak_kb "SELECT pg_column_size(storage.jsonb_patch(doc, '[{\"op\": \"replace\", \"path\": \"/k7/name\", \"value\": \"z\"}, {\"op\": \"remove\", \"path\": \"/k8\"}, {\"op\": \"add\", \"path\": \"/k9/tags/-\", \"value\": \"c\"}]')) $from")" '<= 3'
mem "peak memory: jsonb_diff of it and a changed copy vs the document" \
  "$(peak_kb "SELECT pg_column_size(storage.jsonb_diff(a.doc, b.doc)) FROM bench.big a, bench.big b WHERE a.id = 1 AND b.id = 2")" '<= 3'
mem "peak memory, floor: core || on it vs the document" "$core" ''
mem "peak memory, floor: detoasting it (jsonb_typeof) vs the document" "$floor" ''
q -c "DROP TABLE bench.big" >/dev/null
