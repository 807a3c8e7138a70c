#!/usr/bin/env python3
"""Runs a command and reports the peak resident memory of its whole process tree (the
command and every descendant, summed), polling /proc every 10 ms (Linux).

    scripts/peak_rss.py [--limit-mib N] -- COMMAND [ARG...]

`/usr/bin/time -v` reports the largest single process only; a program that starts
ffmpeg needs the sum. Prints `peak_rss_mib=<MiB> exit=<code>` on stderr after the
command's own output. With --limit-mib the tree is killed (SIGKILL) once its total goes
over N MiB (to measure a runaway without the machine's OOM killer), and the line says
`killed_over_limit`. Exits with the command's exit code (137 when killed).
"""
import os
import signal
import subprocess
import sys
import time


def children_map():
    kids = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: the fields after the
        # last ')' are state, ppid, ...
        rest = stat[stat.rfind(b")") + 2 :].split()
        kids.setdefault(int(rest[1]), []).append(int(name))
    return kids


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree(root):
    kids = children_map()
    out, stack = [], [root]
    while stack:
        pid = stack.pop()
        out.append(pid)
        stack.extend(kids.get(pid, []))
    return out


def main():
    args = sys.argv[1:]
    limit = None
    if args[:1] == ["--limit-mib"]:
        limit = int(args[1]) * 1024
        args = args[2:]
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        sys.exit(__doc__)
    child = subprocess.Popen(args, start_new_session=True)
    peak, killed = 0, False
    while child.poll() is None:
        pids = tree(child.pid)
        total = sum(rss_kib(p) for p in pids)
        peak = max(peak, total)
        if limit is not None and total > limit:
            os.killpg(child.pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.01)
    code = child.wait()
    code = 137 if killed else (code if code >= 0 else 128 - code)
    note = " killed_over_limit" if killed else ""
    print(f"peak_rss_mib={peak / 1024:.0f} exit={code}{note}", file=sys.stderr)
    sys.exit(code)


if __name__ == "__main__":
    main()
