"""The kernel-log scanner: splats, leaks and hangs in a guest's kernel log.

Every test is checked by it (tests/conftest.py): the console log of each guest the test used,
from where the test started, plus a kmemleak report where the kernel has kmemleak. A line that
matches `PATTERNS` fails the test, unless it is a gap of the C driver's stated in
tests/expect.py (`KNOWN_SPLATS`).
"""

import re

# What a failure looks like, from netdev's CI (NIPA's crash detector) and the debug options of
# the debug flavours (scripts/config/debug.config).
PATTERNS = (
    r"BUG:",
    r"WARNING:",
    r"KASAN",
    r"KFENCE",
    r"UBSAN",
    r"ODEBUG",
    r"refcount_t:",
    r"ref_tracker",
    r"unreferenced object",
    r"possible circular locking",
    r"possible recursive locking",
    r"inconsistent lock state",
    r"INFO: trying to register non-static key",
    r"suspicious RCU usage",
    r"sleeping function called from invalid context",
    r"soft lockup",
    r"hard LOCKUP",
    r"rcu_sched detected stalls|rcu_preempt detected stalls|detected stall",
    r"blocked for more than",
    r"waiting for .* Usage count",
    r"unregister_netdevice: waiting",
    r"list_add corruption",
    r"list_del corruption",
    r"Oops",
    r"general protection fault",
    r"kernel BUG at",
    r"panicked at",
    r"Kernel panic",
    r"Call Trace:",
    r"\] RIP: ",
    r"has \d+/\d+ users at",
    r"reference already released",
    # net_crit lines of the core's transmit path, meant for a driver bug: a device without a
    # qdisc whose queue is stopped, or that sends back into itself.
    r"asks to queue packet",
    r"Dead loop on virtual device",
)
PROBLEM = re.compile("|".join(f"(?:{p})" for p in PATTERNS))

# Lines that match a pattern but report no problem.
BENIGN = re.compile(
    # The kernel's banner for a debug option, not a report.
    r"Memory state tracking disabled|KASAN: .*(?:initialized|enabled)|"
    r"kfence: initialized|KFENCE: .*initialized|"
    # kmemleak's summary points at the report, which is scanned on its own.
    r"kmemleak: \d+ new suspected memory leaks")


def problems(text):
    """The problems that `text` reports, in order: each a report of one or more lines, from the
    line that matches a pattern to the end of its trace ("---[ end trace"), so that a report is
    judged, and listed, as a whole."""
    lines = text.splitlines()
    reports, i = [], 0
    while i < len(lines):
        line = lines[i]
        if not PROBLEM.search(line) or BENIGN.search(line):
            i += 1
            continue
        end = i + 1
        # A report's trace follows its first line; take it along, up to its end marker: a
        # WARN's "end trace", or the end of the task's stack for a dump_stack() (lockdep).
        for j in range(i + 1, min(i + TRACE_LINES, len(lines))):
            if END_OF_TRACE.search(lines[j]):
                end = j + 1
                break
        else:
            end = i + 1
            while end < len(lines) and end < i + TRACE_LINES and TRACE_LINE.search(lines[end]):
                end += 1
        reports.append("\n".join(lines[i:end]))
        i = end
    return reports


# How far a report's trace may reach, and what ends it or belongs to it.
TRACE_LINES = 120
END_OF_TRACE = re.compile(r"---\[ end trace|---\[ end Kernel panic|</TASK>")
TRACE_LINE = re.compile(r"^\[\s*\d+\.\d+\]\s+(?:\?|<|[A-Za-z_][\w.]*\+0x|RIP:|RSP:|R[A-Z0-9]+:|"
                        r"Code:|CS:|FS:|CR2:|PKRU:|Call Trace:|Modules linked|CPU:|Hardware|"
                        r"Tainted:)")


def kmemleak_scan(agent, timeout=300):
    """Scans for leaks twice (an object must look unreferenced in two scans, as netdev's CI
    asks) and returns kmemleak's report; "" where the kernel has no kmemleak."""
    script = ("k=/sys/kernel/debug/kmemleak; "
              "[ -e $k ] || mount -t debugfs none /sys/kernel/debug 2>/dev/null; "
              "[ -w $k ] || exit 0; echo scan > $k; echo scan > $k; cat $k")
    rc, out = agent.run(script, timeout)
    return out if rc == 0 else f"kmemleak scan failed ({rc}): {out}"


def leaks(report):
    """kmemleak's report, one string per object ("unreferenced object 0x... (size N):" and its
    backtrace)."""
    return [m.strip() for m in re.split(r"\n(?=unreferenced object )", "\n" + report)
            if m.strip().startswith("unreferenced object ")]
