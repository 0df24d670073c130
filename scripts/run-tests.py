#!/usr/bin/env python3
"""Build every test target once, then run the test binaries side by side.

`cargo test` runs its test binaries one after another, and most of ours
spend their time waiting on sockets, child servers (Redis, pebble) and
timers, so a few at once finish in a fraction of the time. Each binary's
output is kept and printed whole when it fails.

    scripts/run-tests.py [--jobs N] [cargo options...] [-- test-binary args...]

e.g. `scripts/run-tests.py --features tray` (what scripts/test.sh runs), or
`scripts/run-tests.py -- --test-threads 1`.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build(cargo_args):
    """Build the test targets; return (name, executable) of each."""
    command = ["cargo", "test", "--no-run", "--all-targets", "--locked",
               "--message-format=json-render-diagnostics", *cargo_args]
    proc = subprocess.run(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        sys.exit(proc.returncode)
    binaries = []
    for line in proc.stdout.splitlines():
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if message.get("reason") == "compiler-artifact" and message.get("executable") \
                and message.get("profile", {}).get("test"):
            target = message["target"]
            binaries.append((f"{target['kind'][0]} {target['name']}", message["executable"]))
    return binaries


def run(binary, test_args):
    name, path = binary
    started = time.monotonic()
    proc = subprocess.run([path, *test_args], cwd=ROOT, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, errors="replace")
    return name, proc.returncode, time.monotonic() - started, proc.stdout


def main():
    argv = sys.argv[1:]
    test_args = []
    if "--" in argv:
        split = argv.index("--")
        argv, test_args = argv[:split], argv[split + 1:]
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--jobs", type=int, default=3)
    options, cargo_args = parser.parse_known_args(argv)

    binaries = build(cargo_args)
    started = time.monotonic()
    failed = []
    # Alphabetical happens to start the slowest (acme) first.
    binaries.sort()
    with ThreadPoolExecutor(max_workers=options.jobs) as pool:
        runs = [pool.submit(run, binary, test_args) for binary in binaries]
        for done in as_completed(runs):
            name, code, seconds, output = done.result()
            summary = [l for l in output.splitlines() if l.startswith("test result:")]
            print(f"{'ok  ' if code == 0 else 'FAIL'} {name:<32} {seconds:6.1f} s  "
                  f"{summary[-1] if summary else ''}", flush=True)
            if code != 0:
                failed.append(name)
                print(output, flush=True)
    print(f"{len(binaries)} test binaries in {time.monotonic() - started:.0f} s, "
          f"{options.jobs} at a time; failed: {', '.join(failed) or 'none'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
