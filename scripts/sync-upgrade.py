#!/usr/bin/env python3
"""Refreshes every `CREATE OR REPLACE FUNCTION schema.name(` block of the current upgrade script
(sql/pg_storage_ext--<latest release>--<crate version>.sql) from its definition in sql/<capability>.sql, and
every `CREATE FUNCTION` / `CREATE PROCEDURE schema.name(` block there (objects new in this version,
made as a fresh install makes them), so a routine changed again after it was first copied there is
not left stale. The upgrade test
(tests/integration/tests/upgrade.rs) is what proves the result equals a fresh install; this only
saves copying by hand. Usage: scripts/sync-upgrade.py"""
import glob
import os
import re
import sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
version = re.search(r'^version = "([^"]+)"', open(os.path.join(root, "Cargo.toml")).read(), re.M).group(1)
# the update script from the latest frozen release (sql/pg_storage_ext--X.Y.Z.sql) to this version
releases = sorted((tuple(int(x) for x in m.group(1).split(".")), m.group(1))
                  for m in (re.fullmatch(r"pg_storage_ext--(\d+\.\d+\.\d+)\.sql", os.path.basename(p))
                            for p in glob.glob(os.path.join(root, "sql", "pg_storage_ext--*.sql"))) if m)
latest = [r for _, r in releases if r != version][-1]
path = os.path.join(root, "sql", f"pg_storage_ext--{latest}--{version}.sql")
sources = {p: open(p).read() for p in glob.glob(os.path.join(root, "sql", "*.sql")) if "--" not in os.path.basename(p)}


def block(text, start):
    """From `start` to the end of the routine: the `$$;` closing its first `$$` body, or the first
    `;` when that comes before any `$$` (a C function's `AS 'MODULE_PATHNAME', 'symbol';`)."""
    body = text.find("$$", start)
    semi = text.index(";", start)
    if body < 0 or semi < body:
        return text[start:semi + 1]
    return text[start:text.index("$$;", body + 2) + 3]


upgrade = open(path).read()
for kind in ("FUNCTION", "PROCEDURE"):
    for lead in (f"CREATE OR REPLACE {kind}", f"CREATE {kind}"):
        for name in dict.fromkeys(re.findall(lead + r" (\w+\.\w+)\(", upgrade)):
            found = [s for s in sources.values() if f"CREATE {kind} {name}(" in s]
            if len(found) != 1:
                sys.exit(f"{name}: defined in {len(found)} files of sql/")
            src = found[0]
            new = lead + block(src, src.index(f"CREATE {kind} {name}("))[len(f"CREATE {kind}"):]
            old = block(upgrade, upgrade.index(f"{lead} {name}("))
            upgrade = upgrade.replace(old, new)
open(path, "w").write(upgrade)
