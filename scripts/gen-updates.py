#!/usr/bin/env python3
"""Writes the extension's update scripts, assembled the way TimescaleDB assembles its own: for each
release A followed by B (the frozen sql/pg_storage_ext--X.Y.Z.sql files, then the crate's version),
sql/pg_storage_ext--A--B.sql's place in the extension directory is taken by

  1. the hand-written part, sql/updates/A--B.sql: only what is not idempotent (new and changed
     tables, roles, triggers, data moves, DROPs of removed or re-signatured objects), up to a line
     `-- @post-update` if there is one. A new object is not copied there: a line `-- @new TEXT`
     stands for the one statement of B's full script that contains TEXT;
  2. every routine, view, comment and grant of B's full script, in that script's order, as
     idempotent statements (CREATE OR REPLACE FUNCTION / PROCEDURE / VIEW, COMMENT ON, GRANT,
     REVOKE, and the blocks quoted `DO $grants$`, which decide privileges: sql/grants.sql's);
  3. the hand-written part after `-- @post-update` (what needs B's routines, e.g. re-creating
     triggers on users' tables with a new function).

B's full script is the frozen one for a release, and for the crate's version the script cargo-pgrx
generated into the extension directory (install_release_scripts in scripts/lib.sh calls this).
Nothing generated is committed; the upgrade test (tests/integration/tests/upgrade.rs) proves that
an updated database equals a fresh install.

Usage: scripts/gen-updates.py EXTENSION_DIR          (writes every update script there)
       scripts/gen-updates.py --stats EXTENSION_DIR  (also prints hand-written / generated lines)"""
import glob
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXT = "pg_storage_ext"
POST = "-- @post-update"


DOLLAR_QUOTE = re.compile(r"\$([A-Za-z_][A-Za-z_0-9]*)?\$")


def statements(text):
    """Splits SQL text into statements (each with its leading comments), honouring quotes,
    dollar quotes, quoted identifiers and comments; psql meta-commands (a line starting with a
    backslash) are statements of their own."""
    out, start, i, n = [], 0, 0, len(text)
    while i < n:
        c = text[i]
        if c == "-" and text.startswith("--", i):
            i = text.find("\n", i)
            i = n if i < 0 else i + 1
        elif c == "/" and text.startswith("/*", i):
            depth, i = 1, i + 2
            while depth and i < n:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
        elif c == "'":
            escapes = i > 0 and text[i - 1] in "eE" and (i < 2 or not (text[i - 2].isalnum() or text[i - 2] == "_"))
            i += 1
            while i < n:
                if escapes and text[i] == "\\":
                    i += 2
                elif text[i] == "'":
                    if text.startswith("''", i):
                        i += 2
                    else:
                        i += 1
                        break
                else:
                    i += 1
        elif c == '"':
            i = text.index('"', i + 1) + 1
            while text.startswith('"', i):
                i = text.index('"', i + 1) + 1
        elif c == "$" and (m := DOLLAR_QUOTE.match(text, i)) and \
                not (i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_")):
            tag = m.group(0)
            i = text.index(tag, i + len(tag)) + len(tag)
        elif c == "\\" and not code(text[start:i]):
            end = text.find("\n", i)
            end = n if end < 0 else end + 1
            out.append(text[start:end])
            start = i = end
        elif c == ";":
            out.append(text[start:i + 1])
            start = i = i + 1
        else:
            i += 1
    if start < n:
        out.append(text[start:])
    return out


def code(stmt):
    """The statement without its leading comments and white space."""
    s = stmt
    while True:
        s = s.lstrip()
        if s.startswith("--"):
            nl = s.find("\n")
            s = "" if nl < 0 else s[nl + 1:]
        elif s.startswith("/*"):
            s = s[s.index("*/") + 2:]
        else:
            return s


ROUTINE = re.compile(r"CREATE\s+(?:OR\s+REPLACE\s+)?(FUNCTION|PROCEDURE|VIEW)\s", re.I)


def idempotent(stmt):
    """The statement as the update repeats it, or None when it is not one the update repeats."""
    body = code(stmt)
    m = ROUTINE.match(body)
    if m:
        return f"CREATE OR REPLACE {m.group(1).upper()} " + body[m.end():]
    if re.match(r"(COMMENT\s+ON|GRANT|REVOKE)\s", body, re.I):
        return body
    if body.startswith("DO $grants$"):
        return body
    return None


def version_key(v):
    return tuple(int(x) for x in v.split("."))


def crate_version():
    text = open(os.path.join(ROOT, "Cargo.toml")).read()
    return re.search(r'^version = "([^"]+)"', text, re.M).group(1)


def releases():
    """The frozen releases, oldest first."""
    found = []
    for p in glob.glob(os.path.join(ROOT, "sql", f"{EXT}--*.sql")):
        m = re.fullmatch(rf"{EXT}--(\d+\.\d+\.\d+)\.sql", os.path.basename(p))
        if m:
            found.append(m.group(1))
    return sorted(found, key=version_key)


def norm(text):
    return re.sub(r"\s+", " ", text).strip()


def include_new(hand, full, where):
    """Replaces each line `-- @new TEXT` of the hand-written part with the one statement of the
    full script whose code contains TEXT (white space aside): a new table, role, trigger or seed
    row is written once, in its capability file, and the update takes it from there."""
    codes = [(norm(code(s)), code(s)) for s in statements(full)]

    def one(m):
        want = norm(m.group(1))
        found = [c for n, c in codes if want in n]
        if len(found) != 1:
            sys.exit(f"{where}: `-- @new {m.group(1)}` matches {len(found)} statements of the full script")
        return found[0].rstrip() + "\n"

    return re.sub(r"^-- @new (.+)\n", one, hand, flags=re.M)


def assemble(source, target, full_script):
    """The update script from `source` to `target`, given `target`'s full script."""
    hand_path = os.path.join(ROOT, "sql", "updates", f"{source}--{target}.sql")
    hand = open(hand_path).read()
    for text, where in ((full_script, f"{target}'s full script"), (hand, hand_path)):
        if "".join(statements(text)) != text:
            sys.exit(f"{where}: not split into statements losslessly (a quote or comment left open?)")
    pre, _, post = include_new(hand, full_script, hand_path).partition(POST + "\n")
    generated = [s for s in (idempotent(s) for s in statements(full_script)) if s is not None]
    rel = os.path.relpath(hand_path, ROOT)
    parts = [
        f"-- {EXT} {source} -> {target}, applied by ALTER EXTENSION {EXT} UPDATE. GENERATED by\n"
        f"-- scripts/gen-updates.py from {rel} (the hand-written part) and {target}'s full script\n"
        f"-- (its routines, views, comments and grants, repeated idempotently). Do not edit.\n",
        f'\\echo Use "ALTER EXTENSION {EXT} UPDATE" to load this file. \\quit\n\n',
        pre.rstrip("\n") + "\n",
        f"\n-- Generated: every routine, view, comment and grant of {target}.\n",
        "\n".join(generated) + "\n",
    ]
    if post.strip():
        parts += [f"\n-- From {rel}, after the generated part.\n", post]
    return "".join(parts), len(hand.splitlines()), len(generated)


def main(argv):
    stats = "--stats" in argv
    args = [a for a in argv if a != "--stats"]
    if len(args) != 1:
        sys.exit(__doc__)
    ext_dir = args[0]
    current = crate_version()
    versions = releases()
    if current not in versions:
        versions.append(current)
    for source, target in zip(versions, versions[1:]):
        if target == current and target not in releases():
            full_path = os.path.join(ext_dir, f"{EXT}--{target}.sql")
        else:
            full_path = os.path.join(ROOT, "sql", f"{EXT}--{target}.sql")
        if not os.path.exists(full_path):
            sys.exit(f"{full_path}: missing (the full script of {target})")
        text, hand_lines, routines = assemble(source, target, open(full_path).read())
        out = os.path.join(ext_dir, f"{EXT}--{source}--{target}.sql")
        with open(out, "w") as f:
            f.write(text)
        if stats:
            print(f"{source} -> {target}: {hand_lines} hand-written lines, "
                  f"{len(text.splitlines())} lines in all ({routines} idempotent statements)")


if __name__ == "__main__":
    main(sys.argv[1:])
