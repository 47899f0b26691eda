#!/usr/bin/env python3
"""Refreshes every `CREATE OR REPLACE FUNCTION schema.name(` block of the current upgrade script
(sql/pg_storage_ext--0.1.0--<crate version>.sql) from its definition in sql/<capability>.sql, so a
function changed again after it was first copied there is not left stale. The upgrade test
(tests/integration/tests/upgrade.rs) is what proves the result equals a fresh install; this only
saves copying by hand. Usage: scripts/sync-upgrade.py"""
import glob
import os
import re
import sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
version = re.search(r'^version = "([^"]+)"', open(os.path.join(root, "Cargo.toml")).read(), re.M).group(1)
path = os.path.join(root, "sql", f"pg_storage_ext--0.1.0--{version}.sql")
sources = {p: open(p).read() for p in glob.glob(os.path.join(root, "sql", "*.sql")) if "--" not in os.path.basename(p)}


def block(text, start):
    """From `start` to the end of the function: the `$$;` closing its first `$$` body."""
    body = text.index("$$", start)
    return text[start:text.index("$$;", body + 2) + 3]


upgrade = open(path).read()
for name in dict.fromkeys(re.findall(r"CREATE OR REPLACE FUNCTION (\w+\.\w+)\(", upgrade)):
    found = [s for s in sources.values() if f"CREATE FUNCTION {name}(" in s]
    if len(found) != 1:
        sys.exit(f"{name}: defined in {len(found)} files of sql/")
    src = found[0]
    new = "CREATE OR REPLACE FUNCTION" + block(src, src.index(f"CREATE FUNCTION {name}("))[len("CREATE FUNCTION"):]
    old = block(upgrade, upgrade.index(f"CREATE OR REPLACE FUNCTION {name}("))
    upgrade = upgrade.replace(old, new)
open(path, "w").write(upgrade)
