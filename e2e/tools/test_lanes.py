#!/usr/bin/env python3
"""Runs the workspace's test binaries in parallel lanes; `e2e/run-tests` calls it.

`cargo test` runs test binaries one after another; most of Helios's binaries wait on servers
(Kafka, the API server, the Lambda emulator), so the suite runs them side by side instead:

  test_lanes.py ARTIFACTS.json [--jobs N] [--durations FILE]

ARTIFACTS.json is the output of `cargo test --no-run --message-format=json-render-diagnostics`.
Each test binary runs as cargo would run it (in its package's directory, with
CARGO_MANIFEST_DIR, CARGO_PKG_NAME and CARGO_CRATE_NAME set), and its whole output is printed
as one block, headed like cargo's `Running` line, when it ends. A binary whose source file
contains the marker `helios-test-lane: exclusive` (it stops a shared server, e.g. the broker)
runs alone, before the lanes start. The doc tests run as one more job (`cargo test --doc`).
Binaries start longest first by the durations the previous run recorded in FILE (one JSON
object, name → seconds), so the lanes end together. Exits 1 if any job failed.
"""

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

EXCLUSIVE_MARKER = "helios-test-lane: exclusive"


def test_binaries(artifacts_path):
    """Test executables from cargo's JSON messages, with what running them needs."""
    jobs = []
    with open(artifacts_path, encoding="utf-8") as f:
        for line in f:
            if not line.startswith("{"):
                continue
            msg = json.loads(line)
            if msg.get("reason") != "compiler-artifact" or not msg.get("executable"):
                continue
            if not msg["profile"]["test"]:
                continue
            target = msg["target"]
            manifest_dir = os.path.dirname(msg["manifest_path"])
            package = msg["package_id"]
            pkg_name = package_name(package, manifest_dir)
            src = target["src_path"]
            name = f"{pkg_name}::{target['name']}({'/'.join(target['kind'])})"
            jobs.append(
                {
                    "name": name,
                    "argv": [msg["executable"]],
                    "cwd": manifest_dir,
                    "env": {
                        "CARGO_MANIFEST_DIR": manifest_dir,
                        "CARGO_PKG_NAME": pkg_name,
                        "CARGO_CRATE_NAME": target["name"].replace("-", "_"),
                    },
                    "header": f"     Running {os.path.relpath(src, manifest_dir)} ({msg['executable']})",
                    "exclusive": is_exclusive(src),
                }
            )
    return jobs


def package_name(package_id, manifest_dir):
    """The package's name from a cargo package id (both the old and the new id formats)."""
    if "#" in package_id:
        tail = package_id.rsplit("#", 1)[1]
        return tail.split("@", 1)[0] if "@" in tail else os.path.basename(manifest_dir)
    return package_id.split(" ", 1)[0]


def is_exclusive(src_path):
    """Whether the binary's source asks to run alone (it stops a server others use)."""
    try:
        with open(src_path, encoding="utf-8") as f:
            return EXCLUSIVE_MARKER in f.read()
    except OSError:
        return False


def doc_job(root):
    """The workspace's doc tests as one job."""
    return {
        "name": "doc-tests",
        "argv": ["cargo", "test", "--workspace", "--locked", "--doc"],
        "cwd": root,
        "env": {},
        "header": "   Doc-tests (workspace)",
        "exclusive": False,
    }


def run(job, lock, results):
    """Runs one job, then prints its output as one block."""
    env = dict(os.environ)
    env.update(job["env"])
    started = time.monotonic()
    proc = subprocess.run(
        job["argv"],
        cwd=job["cwd"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        check=False,
    )
    took = time.monotonic() - started
    with lock:
        sys.stdout.write(f"\n{job['header']}\n")
        sys.stdout.write(proc.stdout.decode("utf-8", errors="replace"))
        sys.stdout.write(f"     [lane] {job['name']} exited {proc.returncode} in {took:.1f} s\n")
        sys.stdout.flush()
        results[job["name"]] = (proc.returncode, took)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("artifacts")
    parser.add_argument("--jobs", type=int, default=3)
    parser.add_argument("--durations", default="")
    parser.add_argument("--root", default=os.getcwd())
    args = parser.parse_args()

    jobs = test_binaries(args.artifacts)
    if not jobs:
        print("test_lanes: cargo built no test binary", file=sys.stderr)
        return 1
    jobs.append(doc_job(args.root))

    previous = {}
    if args.durations and os.path.exists(args.durations):
        try:
            with open(args.durations, encoding="utf-8") as f:
                previous = json.load(f)
        except (OSError, ValueError):
            previous = {}
    # Unknown binaries first (they may be long), then the longest of the previous run.
    jobs.sort(key=lambda j: -previous.get(j["name"], float("inf")))

    lock = threading.Lock()
    results = {}
    for job in (j for j in jobs if j["exclusive"]):
        run(job, lock, results)
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for job in (j for j in jobs if not j["exclusive"]):
            pool.submit(run, job, lock, results)

    if args.durations:
        try:
            with open(args.durations + ".tmp", "w", encoding="utf-8") as f:
                json.dump({name: round(took, 1) for name, (_, took) in results.items()}, f, indent=1)
            os.replace(args.durations + ".tmp", args.durations)
        except OSError as e:
            print(f"test_lanes: could not record durations: {e}", file=sys.stderr)

    failed = sorted(name for name, (code, _) in results.items() if code != 0)
    slowest = sorted(results.items(), key=lambda kv: -kv[1][1])[:8]
    print("\n     [lane] slowest: " + ", ".join(f"{n} {t:.0f} s" for n, (_, t) in slowest))
    if failed:
        print("     [lane] failed: " + ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
