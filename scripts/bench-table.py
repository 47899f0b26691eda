#!/usr/bin/env python3
"""Prints a `make bench` results CSV (target/run/bench-results/latest.csv by default) as the README's
Markdown benchmark table: workload, ours, baseline, ratio, goal, met. Usage:
scripts/bench-table.py [results.csv]"""
import csv
import os
import sys

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(root, "target", "run", "bench-results", "latest.csv")


def num(v, digits):
    return "" if v == "" else f"{float(v):,.{digits}f}"


print("| workload | ours | baseline | ratio | goal | met |")
print("|---|---|---|---|---|---|")
for r in csv.DictReader(open(path)):
    unit = r["unit"]
    met = {"t": "yes", "f": "no"}.get(r["met"], "")
    workload = r["workload"].replace("|", "\\|")
    print(
        f"| {workload} | {num(r['ours'], 1)} {unit} | {num(r['baseline'], 1)} {unit} "
        f"| {num(r['ratio'], 3)} | {r['goal'] or '—'} | {met} |"
    )
