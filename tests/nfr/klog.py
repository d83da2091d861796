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
    """The lines of `text` that report a problem, in order."""
    return [line for line in text.splitlines()
            if PROBLEM.search(line) and not BENIGN.search(line)]


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
