#!/usr/bin/env python3
"""How well a search's latency table predicted its own front: for each run folder's front.json
(a search with "cost": {"latency": "lut"}), every member's predicted latency against the one
measured end to end after the search. Prints a table and writes the summary JSON (--out) with
each run's context (CPU, ISA, versions, target, threads, seed, config hash).

usage: scripts/front-latency-check.py RUN_DIR... [--out FILE]"""
import argparse
import json
import sys


def check(run_dir):
    with open(f"{run_dir}/front.json") as f:
        doc = json.load(f)
    members = []
    for m in doc["front"]:
        measured = m.get("measured_latency_ms")
        if not measured:
            continue
        policy = m["policy"]
        members.append({
            "index": m["index"],
            "predicted_ms": m["latency_ms"],
            "measured_ms": measured,
            "error": (m["latency_ms"] - measured) / measured,
            "int8_layers": m.get("int8_layers", -1),
            "factorized_layers": len(policy.get("rank", {})),
        })
    if not members:
        sys.exit(f"{run_dir}/front.json has no member measured end to end; "
                 "run the search with a latency table (\"cost\": {\"latency\": \"lut\"})")

    def share(sel, bound):
        chosen = [m for m in members if sel(m)]
        return (sum(abs(m["error"]) <= bound for m in chosen) / len(chosen)) if chosen else None

    ctx = doc["context"]
    keep = ["cpu", "isa", "tightfit", "libtorch", "onednn", "target", "precision", "threads",
            "seed", "config_hash", "model", "latency_table"]
    return {
        "run": run_dir,
        "members": len(members),
        "mixed": sum(m["int8_layers"] > 0 for m in members),
        "factorized": sum(m["factorized_layers"] > 0 for m in members),
        "within_5pct": share(lambda m: True, 0.05),
        "within_10pct": share(lambda m: True, 0.10),
        "mixed_within_10pct": share(lambda m: m["int8_layers"] > 0, 0.10),
        "factorized_within_10pct": share(lambda m: m["factorized_layers"] > 0, 0.10),
        "max_abs_error": max(abs(m["error"]) for m in members),
        "front": members,
        "context": {k: ctx[k] for k in keep if k in ctx},
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="search run folders (with front.json)")
    ap.add_argument("--out", help="summary JSON to write")
    a = ap.parse_args()
    results = [check(r) for r in a.runs]
    print(f"{'run':40} {'members':>7} {'mixed':>6} {'factor':>6} {'<=5%':>6} {'<=10%':>6} {'max':>7}")
    for r in results:
        print(f"{r['run']:40} {r['members']:7d} {r['mixed']:6d} {r['factorized']:6d} "
              f"{100 * r['within_5pct']:5.0f}% {100 * r['within_10pct']:5.0f}% "
              f"{100 * r['max_abs_error']:6.1f}%")
    if a.out:
        with open(a.out, "w") as f:
            json.dump({"runs": results}, f, indent=1)
            f.write("\n")
        print(f"written: {a.out}")


if __name__ == "__main__":
    main()
