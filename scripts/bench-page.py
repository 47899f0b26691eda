#!/usr/bin/env python3
"""Writes docs/benchmarks.md, the whole page, from ONE full `make bench` run: its results CSV and
the run's facts beside it (RESULTS.meta, `key: value` lines, written by scripts/bench.sh: when
the run started and ended, the commit, the machine, PostgreSQL, the anchors' versions). The page
is replaced, never appended to. The CSV and its .meta are copied to bench/results/last-run.csv
and .meta, so the page can be written again from the repository alone.

Usage: scripts/bench-page.py [RESULTS.csv] [--set key=value ...] [--check]
  RESULTS.csv   default target/run/bench-results/latest.csv; bench/results/last-run.csv writes
                the page again from the saved run
  --set k=v     adds or overrides a fact of the .meta (e.g. for a run made before bench.sh wrote
                one, or note=... to say what else ran on the machine meanwhile)
  --check       writes nothing; fails when docs/benchmarks.md differs from what it would write
A quick run (BENCH_QUICK=1), or a run of some workloads only (BENCH=name, or one stopped by a
failing workload), is refused: the page shows one full run."""
import importlib.util
import os
import shutil
import sys
import textwrap

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
spec = importlib.util.spec_from_file_location("bench_table", os.path.join(root, "scripts", "bench-table.py"))
bench_table = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench_table)

REQUIRED = ["started", "finished", "duration", "commit", "postgresql", "cores", "memory", "cpu", "os",
            "pg_storage_ext", "anchors"]
SAVED = os.path.join(root, "bench", "results", "last-run")
PAGE = os.path.join(root, "docs", "benchmarks.md")


def read_meta(path):
    meta = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                if ":" in line:
                    k, v = line.split(":", 1)
                    meta[k.strip()] = v.strip()
    return meta


def page(meta, rows):
    note = meta.get("note", "")
    lines = [
        "# Benchmarks",
        "",
        "<!-- Written by scripts/bench-page.py from bench/results/last-run.csv and .meta: do not edit",
        "     by hand; run `make bench`, then scripts/bench-page.py. -->",
        "",
        "One full `make bench` run: every workload of `bench/*.sql` (and `bench/NAME.sh` for the",
        "pgbench ones), each in a database of its own on a throwaway cluster, each timed against a",
        "baseline measured in the same run. Earlier runs are not kept on this page: the next full run",
        "replaces it.",
        "",
        "## The run",
        "",
    ]
    facts = [
        f"Date: {meta['started']} to {meta['finished']} (UTC), {meta['duration']}.",
        f"Commit: `{meta['commit']}`; pg_storage_ext {meta['pg_storage_ext']}, release build (LTO).",
        f"Machine: {meta['cores']} cores ({meta['cpu']}), {meta['memory']} of memory, {meta['os']}"
        + (f", kernel {meta['kernel']}" if meta.get("kernel") else "") + ".",
        f"PostgreSQL {meta['postgresql']}, built from Debian's source package (no assertions), a throwaway"
        " cluster with `fsync = off`, `synchronous_commit = off` and `full_page_writes = off`"
        " (`scripts/cluster.sh`) but for the rows that say otherwise.",
        f"Anchors (the tools compared with): {meta['anchors']}; pg_partman and pg_cron built from Debian's"
        " source packages into that PostgreSQL, check_postgres from Debian's package.",
    ]
    if meta.get("load"):
        facts.append(f"Load average (1, 5, 15 min): {meta['load']}.")
    if note:
        facts.append(note)
    # one bullet per fact, at most 98 columns
    for fact in facts:
        lines += textwrap.wrap(" ".join(fact.split()), width=98, initial_indent="- ", subsequent_indent="  ",
                               break_long_words=False, break_on_hyphens=False)
    lines += [
        "",
        "## How to read the table",
        "",
        "- **ours** and **baseline** are measured in the same run, alternating, and the median of",
        "  each is shown; what the baseline is, the workload's name says (`… vs …`).",
        "- **ratio** is ours / baseline. For times (ms, µs) and sizes (bytes, MB) lower is better; for",
        "  rates (tps, rows/s) the ratio is our rate over the baseline's, so higher is better (rows",
        "  that say \"time per transaction\" compare times). The goal, when there is one, is on the",
        "  ratio: `<= R`, `>= R`, `Nx faster` (ratio ≤ 1/N) or `not slower` (ratio ≤ 1); **met** says",
        "  whether this run met it.",
        "- **Floor** rows measure what the work costs without the extension's machinery: the same",
        "  effect written by hand in one plain statement, or PostgreSQL's own command. When a goal sits",
        "  below its floor, no design that does the work can meet it; each capability's page says",
        "  which goals are such.",
        "- `Citus:` rows run on a coordinator and two workers on the same machine, so no speed-up over",
        "  one node can show; they have no goals. `JSON Schema Test Suite` rows count wrong answers",
        "  (goal 0).",
        "- Ratios compare runs better than absolute figures do: absolute times move with the",
        "  machine's load, ratios far less.",
        "",
        "`make bench` builds a release library, starts a throwaway cluster with the anchors, and runs",
        "each workload file in a database of its own; at the end every figure is printed as one row",
        "of a single table and written as CSV to `target/run/bench-results/results-<time>.csv`",
        "(`latest.csv` points to it), with the run's facts in `results-<time>.meta`. A workload that",
        "fails stops the run with its name, after the table of what was measured before it.",
        "`BENCH=name make bench` runs one file; `BENCH_QUICK=1 make bench` runs every workload at 5 %",
        "of its size, timed once, on the debug build (about a minute): CI runs it after `make test`,",
        "so a benchmark that breaks makes CI red. Quick-run figures are not results and never appear",
        "here. To write this page again: `scripts/bench-page.py` after a full `make bench`.",
        "",
        "## Results",
        "",
    ]
    lines += rows
    return "\n".join(lines) + "\n"


def main(argv):
    args, sets, check = [], {}, False
    it = iter(argv)
    for a in it:
        if a == "--set":
            k, _, v = next(it).partition("=")
            sets[k.strip()] = v.strip()
        elif a == "--check":
            check = True
        else:
            args.append(a)
    csv_path = args[0] if args else os.path.join(root, "target", "run", "bench-results", "latest.csv")
    csv_path = os.path.realpath(csv_path)
    meta_path = os.path.splitext(csv_path)[0] + ".meta"
    meta = read_meta(meta_path)
    meta.update(sets)
    if meta.get("quick") == "yes" or csv_path.endswith("-quick.csv"):
        sys.exit(f"{csv_path}: a quick run (BENCH_QUICK=1): its figures are not results")
    if meta.get("full") and meta["full"] != "yes":
        sys.exit(f"{csv_path}: not a full run ({meta['full']}): the page shows one run of every workload")
    missing = [k for k in REQUIRED if not meta.get(k)]
    if missing:
        sys.exit(f"{meta_path}: missing {', '.join(missing)} (give them with --set key=value)")
    text = page(meta, bench_table.table(csv_path))
    if check:
        current = open(PAGE).read() if os.path.exists(PAGE) else ""
        if current != text:
            sys.exit(f"{PAGE} is not what scripts/bench-page.py writes from {csv_path}")
        return
    os.makedirs(os.path.dirname(SAVED), exist_ok=True)
    if csv_path != os.path.realpath(SAVED + ".csv"):
        shutil.copyfile(csv_path, SAVED + ".csv")
    with open(SAVED + ".meta", "w") as f:
        for k, v in meta.items():
            f.write(f"{k}: {v}\n")
    with open(PAGE, "w") as f:
        f.write(text)
    print(f"{PAGE}: {len(text.splitlines())} lines from {csv_path}")


if __name__ == "__main__":
    main(sys.argv[1:])
