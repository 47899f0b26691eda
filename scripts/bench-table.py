#!/usr/bin/env python3
"""Prints a `make bench` results CSV (target/run/bench-results/latest.csv by default) as a
Markdown table: workload, ours, baseline, ratio, goal, met. scripts/bench-page.py writes the
whole of docs/benchmarks.md around it. Usage: scripts/bench-table.py [results.csv]"""
import csv
import os
import sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def num(v, digits):
    return "" if v == "" else f"{float(v):,.{digits}f}"


def table(path):
    """The Markdown lines of the table of one results CSV."""
    lines = ["| workload | ours | baseline | ratio | goal | met |", "|---|---|---|---|---|---|"]
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            unit = r["unit"]
            met = {"t": "yes", "f": "no"}.get(r["met"], "")
            workload = r["workload"].replace("|", "\\|")
            lines.append(
                f"| {workload} | {num(r['ours'], 1)} {unit} | {num(r['baseline'], 1)} {unit} "
                f"| {num(r['ratio'], 3)} | {r['goal'] or '—'} | {met} |"
            )
    return lines


if __name__ == "__main__":
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "target", "run", "bench-results", "latest.csv")
    print("\n".join(table(path)))
