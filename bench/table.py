#!/usr/bin/python3
"""The benchmark table: median (min-max) per figure and daemon over the
repetitions in a raw results file (lines "DAEMON REP KEY VALUE"), and the
ctsyncd/conntrackd ratio of the medians.

With --check (the smoke run of `make check`): exit 1 when a figure the
harness must produce is missing for either daemon, or ctsyncd left flows
missing or deletes unapplied on fw2 — the harness cannot rot unseen."""
import statistics, sys

ROWS = [
    ("lag_s", "lag after the last creation, s", "<= 0.1"),
    ("missing", "flows missing on fw2", "0"),
    ("gen_rate_off", "generator, no daemon, flows/s", ""),
    ("gen_rate_floor", "generator, read-only listener, flows/s", ""),
    ("gen_rate_on", "generator, daemons running, flows/s", ""),
    ("gen_floor_kept", "generator kept, read-only listener, %", ""),
    ("gen_kept", "generator kept, daemons running, %", ">= 90"),
    ("commit_rate", "commit into the kernel, flows/s", ">= 400,000"),
    ("create_rate_loaded", "batched creates, same occupancy, flows/s", ""),
    ("commit_share", "commit / batched creates, %", ">= 80"),
    ("wire_new", "sync bytes per new flow", "<= 40"),
    ("wire_upd", "sync bytes per update", ""),
    ("wire_del", "sync bytes per delete", "<= 16"),
    ("tlag_s", "traffic: lag after the last datagram, s", "<= 0.1"),
    ("tmissing", "traffic: flows missing on fw2", "0"),
    ("tgen_rate_off", "traffic generator, no daemon, flows/s", ""),
    ("tgen_rate_floor", "traffic generator, read-only listener, flows/s", ""),
    ("tgen_rate_on", "traffic generator, daemons running, flows/s", ""),
    ("tgen_floor_kept", "traffic generator kept, read-only listener, %", ""),
    ("tgen_kept", "traffic generator kept, daemons running, %", ">= 90"),
    ("tcpu_tx", "traffic: CPU-s per 100k flows, sender", "<= 1/2 conntrackd"),
    ("tcpu_rx", "traffic: CPU-s per 100k flows, receiver", "<= 1/2 conntrackd"),
    ("tgen_short", "traffic: datagrams that made no entry on fw1", ""),
    ("dns_rate", "DNS-like: generator, flows/s", ""),
    ("dns_wire", "DNS-like: sync bytes per short flow", ""),
    ("dns_cpu_tx", "DNS-like: CPU-s per 100k flows, sender", ""),
    ("dns_cpu_rx", "DNS-like: CPU-s per 100k flows, receiver", ""),
    ("dns_age_rate", "DNS-like, min_age 5 s: generator, flows/s", ""),
    ("dns_age_wire", "DNS-like, min_age 5 s: sync bytes per flow", ""),
    ("dns_age_cpu_tx", "DNS-like, min_age 5 s: CPU-s/100k, sender", ""),
    ("dns_age_cpu_rx", "DNS-like, min_age 5 s: CPU-s/100k, receiver", ""),
    ("dns_age_synced", "DNS-like, min_age 5 s: flows synced anyway", ""),
    ("e_own_kept", "generator kept, fw1's daemon alone, %", ""),
    ("e_share_floor", "event share of generator, listener, %", ""),
    ("e_share_own", "event share of generator, fw1's daemon, %", ""),
    ("te_own_kept", "traffic generator kept, fw1's daemon alone, %", ""),
    ("te_share_floor", "traffic: event share of generator, listener, %", ""),
    ("te_share_own", "traffic: event share of gen., fw1's daemon, %", ""),
    ("rss_tx", "RSS per flow, sender, bytes", "<= 150"),
    ("rss_rx", "RSS per flow, receiver, bytes", "<= 150"),
    ("cpu_tx", "CPU-s per 100k flows, sender", "<= 1/2 conntrackd"),
    ("cpu_rx", "CPU-s per 100k flows, receiver", "<= 1/2 conntrackd"),
    ("loss_conv_s", "convergence at 10 % loss, s", ""),
    ("loss_missing", "flows missing at 10 % loss", ""),
    ("deletes_missing", "deletes not applied on fw2", ""),
    ("commit_not_held", "flows not held on fw2 before the commit", ""),
    ("commit_missing", "flows the commit left out of fw2's kernel", ""),
]

vals = {}
for line in open(sys.argv[1]):
    p = line.split()
    if len(p) != 4:
        continue
    try:
        vals.setdefault((p[0], p[2]), []).append(float(p[3]))
    except ValueError:
        pass

# shares per repetition: the commit of the kernel's batched create rate, the
# generator's rate with a read-only listener and with the daemons of its rate
# alone
SHARES = [("commit_share", "commit_rate", "create_rate_loaded"),
          ("gen_floor_kept", "gen_rate_floor", "gen_rate_off"),
          ("gen_kept", "gen_rate_on", "gen_rate_off"),
          ("tgen_floor_kept", "tgen_rate_floor", "tgen_rate_off"),
          ("tgen_kept", "tgen_rate_on", "tgen_rate_off"),
          ("e_own_kept", "e_rate_own", "e_rate_off"),
          ("te_own_kept", "te_rate_own", "te_rate_off")]
reps = {}
for line in open(sys.argv[1]):
    p = line.split()
    if len(p) == 4 and any(p[2] in (a, b) for _, a, b in SHARES):
        reps.setdefault((p[0], p[1]), {})[p[2]] = float(p[3])
for (d, _), r in reps.items():
    for key, a, b in SHARES:
        if r.get(b) and a in r:
            vals.setdefault((d, key), []).append(round(100.0 * r[a] / r[b], 1))

def cell(d, k):
    v = vals.get((d, k))
    if not v:
        return "-", None
    m = statistics.median(v)
    fmt = (lambda x: "%.3f" % x) if max(abs(x) for x in v) < 100 and any(x != int(x) for x in v) \
        else (lambda x: "%d" % x)
    return "%s (%s-%s, n=%d)" % (fmt(m), fmt(min(v)), fmt(max(v)), len(v)), m

print("%-46s %-32s %-32s %-8s %s" % ("figure", "ctsyncd median (min-max)",
                                      "conntrackd median (min-max)", "ratio", "target"))
for k, name, target in ROWS:
    a, ma = cell("ctsyncd", k)
    b, mb = cell("conntrackd", k)
    if a == "-" and b == "-":
        continue
    ratio = "%.2f" % (ma / mb) if ma is not None and mb else "-"
    print("%-46s %-32s %-32s %-8s %s" % (name, a, b, ratio, target))

if "--check" in sys.argv[2:]:
    bad = []
    for d in ("ctsyncd", "conntrackd"):
        for k in ("gen_rate_off", "gen_rate_floor", "gen_rate_on", "commit_rate",
                  "create_rate_loaded", "wire_new", "wire_upd",
                  "wire_del", "rss_tx", "rss_rx", "cpu_tx", "cpu_rx", "tgen_rate_off",
                  "tgen_rate_floor", "tgen_rate_on", "tcpu_tx", "tcpu_rx",
                  "e_rate_off", "e_rate_own", "e_share_floor", "e_share_own",
                  "te_rate_off", "te_rate_own", "te_share_floor", "te_share_own",
                  "dns_rate", "dns_wire", "dns_cpu_tx", "dns_cpu_rx"):
            if not vals.get((d, k)):
                bad.append("%s: no %s" % (d, k))
    for k in ("missing", "tmissing", "tgen_short", "deletes_missing", "loss_missing",
              "commit_not_held", "commit_missing"):
        if any(v != 0 for v in vals.get(("ctsyncd", k), [])):
            bad.append("ctsyncd: %s %s" % (k, vals[("ctsyncd", k)]))
    if not vals.get(("ctsyncd", "dns_age_wire")):
        bad.append("ctsyncd: no dns_age_wire")
    if not vals.get(("ctsyncd", "lag_s")) or not vals.get(("ctsyncd", "tlag_s")) or \
            not vals.get(("ctsyncd", "loss_conv_s")):
        bad.append("ctsyncd: no lag or loss convergence figure")
    for b in bad:
        print("  FAIL: " + b)
    sys.exit(1 if bad else 0)
