#!/usr/bin/env python3
"""Compares the two runs of hiredis's test program (tests/thirdparty/hiredis.sh).

Reads <dir>/plain.{log,rc,time} and <dir>/redirect.{log,rc,time}: the output
of hiredis-test built unmodified and built with the rsock redirect, prints
a table of both runs and every test whose outcome differs, and exits

  0  the redirected run passed exactly the tests the unmodified run passed
     (same verdict for every test, same exit status);
  1  it did not;
  3  the unmodified run did not pass: an environment problem (server,
     network, compiler), not a finding about rsock.

hiredis's test.c prints "#NN name: " and then PASSED, FAILED or SKIPPED
(with colour codes); tests without a verdict are informational ("#NN
Throughput:" prints timings only) unless the run ended inside them.
"""
import re
import sys

ANSI = re.compile(r"\x1b\[[0-9;]*m")
TEST = re.compile(r"^#(\d+) ")
VERDICT = re.compile(r"(PASSED|FAILED|SKIPPED)\s*$")

SIGNALS = {124: "timed out (killed by timeout)", 134: "aborted (SIGABRT: an assert)",
           137: "killed (SIGKILL)", 139: "crashed (SIGSEGV)"}


def parse(path, rc):
    """Returns (tests, extra, tail): tests is a list of [key, verdict] in
    order, extra the unnumbered verdicts ("Testing against ...: SKIPPED"),
    tail the log's lines after the last verdict."""
    lines = [ANSI.sub("", line.rstrip("\n")) for line in open(path, errors="replace")]
    tests, extra = [], []
    last_verdict_line = -1
    for i, line in enumerate(lines):
        m = TEST.match(line)
        if m:
            name = line[m.end():]
            v = VERDICT.search(name)
            if v:
                name = name[:v.start()]
            key = "#%s %s" % (m.group(1), name.strip().rstrip(":"))
            tests.append([key, v.group(1) if v else None])
            if v:
                last_verdict_line = i
        else:
            v = VERDICT.search(line)
            if v:
                last_verdict_line = i
                if tests and tests[-1][1] is None and not line.startswith("Testing against"):
                    tests[-1][1] = v.group(1)
                else:
                    extra.append([line[:v.start()].strip(), v.group(1)])
    # A test left without a verdict: informational, unless the run ended in it.
    for j, t in enumerate(tests):
        if t[1] is None:
            t[1] = "interrupted" if (j == len(tests) - 1 and rc != 0) else "no verdict"
    tail = [l for l in lines[last_verdict_line + 1:] if l.strip()]
    return tests, extra, tail


def read(d, name):
    rc = int(open("%s/%s.rc" % (d, name)).read().strip())
    time = open("%s/%s.time" % (d, name)).read().strip()
    tests, extra, tail = parse("%s/%s.log" % (d, name), rc)
    return {"rc": rc, "time": time, "tests": tests, "extra": extra, "tail": tail}


def count(run, verdict):
    return sum(1 for _, v in run["tests"] + run["extra"] if v == verdict)


def main():
    d = sys.argv[1]
    plain, redir = read(d, "plain"), read(d, "redirect")
    reached = {k for k, _ in redir["tests"]}
    not_reached = [k for k, _ in plain["tests"] if k not in reached]

    cols = ["PASSED", "FAILED", "SKIPPED", "no verdict", "interrupted"]
    print("hiredis 1.0.0 test suite (test.c), unmodified vs redirected through rsock:")
    print("  %-11s %-5s %6s %6s %7s %10s %11s %11s %7s" % (
        "build", "exit", "passed", "failed", "skipped", "no verdict", "interrupted", "not reached", "time"))
    for label, run, nr in (("unmodified", plain, 0), ("redirected", redir, len(not_reached))):
        print("  %-11s %-5d %6d %6d %7d %10d %11d %11d %6ss" % (
            label, run["rc"], *[count(run, c) for c in cols], nr, run["time"]))
    print("  (\"no verdict\": the throughput tests, which print timings only;"
          " \"not reached\": tests the redirected run never started)")

    for label, run in (("unmodified", plain), ("redirected", redir)):
        if run["rc"] != 0:
            how = SIGNALS.get(run["rc"], "exit %d" % run["rc"])
            print("\n%s run ended: %s; its last lines:" % (label, how))
            for l in run["tail"][-6:]:
                print("    " + l)

    plain_ok = plain["rc"] == 0 and count(plain, "FAILED") == 0 and count(plain, "interrupted") == 0
    if not plain_ok:
        print("\nENVIRONMENT PROBLEM: the unmodified hiredis build does not pass its own"
              " suite here (server, network or toolchain); nothing is proven about rsock.")
        for k, v in plain["tests"]:
            if v in ("FAILED", "interrupted"):
                print("    unmodified %s: %s" % (k, v))
        return 3

    pv = dict(plain["tests"])
    rv = dict(redir["tests"])
    diffs = []
    for k, v in plain["tests"]:
        r = rv.get(k, "not reached")
        if r != v:
            diffs.append((k, v, r))
    for k, r in redir["tests"]:
        if k not in pv:
            diffs.append((k, "absent", r))
    if plain["extra"] != redir["extra"]:
        diffs.append(("unnumbered verdicts", plain["extra"], redir["extra"]))
    if not diffs and redir["rc"] == plain["rc"]:
        print("\nRESULT: the redirected build passes exactly what the unmodified build passes"
              " (%d passed, %d skipped)." % (count(plain, "PASSED"), count(plain, "SKIPPED")))
        return 0
    print("\nRESULT: the redirected build differs from the unmodified build:")
    for k, v, r in diffs:
        if r != "not reached":
            print("    %s: unmodified %s, redirected %s" % (k, v, r))
    if not_reached:
        print("    not reached by the redirected run (%d): %s ... %s" % (
            len(not_reached), not_reached[0], not_reached[-1]))
    if redir["rc"] != plain["rc"]:
        print("    exit status: unmodified %d, redirected %d" % (plain["rc"], redir["rc"]))
    return 1


if __name__ == "__main__":
    sys.exit(main())
