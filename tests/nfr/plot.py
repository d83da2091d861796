"""Figures of measured events (nfr.timeline): for each driver side by side, on one time axis
from the event's QMP command, the packets per second each slave sent and received, each lost
ping, the event's steps, the guest's pause in a migration and the driver's switches (from its
tracepoint)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after the backend is chosen

LEAD_S, TAIL_S = 1.0, 3.0  # shown before the event's first step, and after its last
ROLE_COLOURS = {"primary": "tab:blue", "standby": "tab:orange"}
# The step that starts each event: the figure's time 0.
FIRST_STEP = {"unplug": "device_del", "replug": "device_add", "migrate": "migrate"}
LOST = {0: ("guest_to_peer", "lost guest->peer"), 1: ("peer_to_guest", "lost peer->guest")}


# Rates are taken over this many sample intervals (about 150 ms): a single one holds a few
# packets at 100 pps each way, too few for a readable rate.
SPAN = 5


def rates(samples, span=SPAN):
    """{role: [(t, rx/s, tx/s)]} over `span` consecutive sample intervals of the same device."""
    out = {"primary": [], "standby": []}
    for (ta, a), (tb, b) in zip(samples, samples[span:]):
        dt = tb - ta
        if dt <= 0:
            continue
        for role in out:
            if role in a and role in b and a[role][0] == b[role][0]:
                drx, dtx = b[role][1] - a[role][1], b[role][2] - a[role][2]
                if drx >= 0 and dtx >= 0:
                    out[role].append(((ta + tb) / 2, drx / dt, dtx / dt))
    return out


def figure(event, timelines, path):
    """Writes the figure of `event` ({driver: timeline data}) to `path`."""
    drivers = list(timelines)
    # From just before the event to a few seconds after its last step: the rest is steady.
    span = max(t - dict(tl["marks"]).get(FIRST_STEP.get(event), t)
               for tl in timelines.values() for _, t in tl["marks"]) + TAIL_S
    fig, axes = plt.subplots(2, len(drivers), figsize=(6.5 * len(drivers), 6), sharex=True,
                             sharey="row", squeeze=False)
    for col, driver in enumerate(drivers):
        tl = timelines[driver]
        marks = dict(tl["marks"])
        t0 = marks.get(FIRST_STEP.get(event), tl["samples"][0][0] if tl["samples"] else 0)
        r = rates(tl["samples"])
        for row, (label, k) in enumerate((("sent", 2), ("received", 1))):
            ax = axes[row][col]
            for role, colour in ROLE_COLOURS.items():
                pts = r[role]
                if pts:
                    ax.step([p[0] - t0 for p in pts], [p[k] for p in pts], where="pre",
                            color=colour, label=f"{role} {label}")
            key, text = LOST[row]
            lost = [t - t0 for t in tl["lost"].get(key, [])]
            if lost:
                ax.plot(lost, [0] * len(lost), "|", color="red", markersize=14,
                        label=f"{text} ({len(lost)})")
            if "STOP" in marks and "RESUME" in marks:
                ax.axvspan(marks["STOP"] - t0, marks["RESUME"] - t0, color="grey", alpha=0.3,
                           label="guest paused")
            for name, t in tl["marks"]:
                if name in ("STOP", "RESUME"):
                    continue
                ax.axvline(t - t0, color="black", linestyle="--", linewidth=0.8)
                if row == 0:
                    ax.annotate(name, (t - t0, 1), xycoords=("data", "axes fraction"),
                                rotation=90, va="top", ha="right", fontsize=7)
            for t, line in tl["switches"]:
                ax.axvline(t - t0, color="green", linewidth=1.2)
                if row == 1:
                    ax.annotate(line, (t - t0, 1),
                                xycoords=("data", "axes fraction"), rotation=90, va="top",
                                ha="left", fontsize=7, color="green")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, loc="center right")
        axes[0][col].set_title(f"{driver}: {event}")
        axes[1][col].set_xlabel(f"s from {FIRST_STEP.get(event, 'start')}")
    axes[0][0].set_xlim(-LEAD_S, span)
    axes[0][0].set_ylabel("guest sent, packets/s")
    axes[1][0].set_ylabel("guest received, packets/s")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
