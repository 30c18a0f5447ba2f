#!/usr/bin/env python3
"""Aggregate the wrk results written by run.sh into a table (stdout) and JSON.

usage: report.py --runs runs.tsv --meta meta.env [--checks checks.tsv]
                 [--haproxy-cfg FILE] [--json OUT]

runs.tsv columns (tab separated, no header):
  round alg variant ntokens target label status result_json cpu_target_s cpu_upstream_s
  bg_busy_pct (machine busy % just before, idle) foreign_pct (CPU % of all CPUs used
  by processes outside the bench during the measured run)
status is "ok" when wrk ran; otherwise the reason the target was skipped.
With several rounds, req/s, p50 and p99 are medians over the rounds.
Ratios are against the row whose target is "haproxy" in the same scenario.
Variant "fresh": the wrk summary carries "fresh" (pool lines used, requests beyond
the pool); a verifying row that ran out of tokens is marked (x) and warned about; a no-auth
reference row that started over in the pool is only noted (harmless: upstream and
nginx never read the token).
"""
import argparse
import json
import statistics
import sys
from collections import OrderedDict


def load_meta(path):
    meta = OrderedDict()
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if "=" in line:
                k, v = line.split("=", 1)
                meta[k] = v
    return meta


def load_runs(path):
    scen = OrderedDict()  # (alg, variant) -> OrderedDict(target -> dict)
    with open(path) as f:
        for line in f:
            if not line.strip():
                continue
            rnd, alg, variant, ntok, target, label, status, res, cpu_t, cpu_u, bg, fgn = line.rstrip("\n").split("\t")
            s = scen.setdefault((alg, variant), {"ntokens": int(ntok), "targets": OrderedDict()})
            t = s["targets"].setdefault(target, {"label": label, "rounds": []})
            r = {"round": int(rnd), "status": status, "bg_busy_pct": float(bg), "foreign_pct": float(fgn)}
            if status == "ok":
                with open(res) as rf:
                    w = json.load(rf)
                secs = w["duration_us"] / 1e6
                r.update(
                    requests=w["requests"],
                    duration_s=round(secs, 3),
                    rps=w["requests"] / secs if secs else 0.0,
                    p50_ms=w["latency_us"]["p50"] / 1000,
                    p90_ms=w["latency_us"]["p90"] / 1000,
                    p99_ms=w["latency_us"]["p99"] / 1000,
                    p999_ms=w["latency_us"]["p999"] / 1000,
                    max_ms=w["latency_us"]["max"] / 1000,
                    socket_errors=sum(v for k, v in w["errors"].items() if k != "status"),
                    errors_detail=w["errors"],
                    non_2xx=w["errors"]["status"],  # wrk counts status >= 400
                    cpu_target_s=float(cpu_t),
                    cpu_upstream_s=float(cpu_u),
                )
                if "fresh" in w:
                    f = w["fresh"]
                    r.update(fresh_used=f["used"], fresh_beyond=f["beyond"], fresh_wrap=f["wrap"],
                             fresh_lines=[f["first"], f["last"]])
                r["cpu_target_pct"] = 100 * r["cpu_target_s"] / secs if secs else 0.0
                r["cpu_us_per_req"] = 1e6 * r["cpu_target_s"] / w["requests"] if w["requests"] else 0.0
            t["rounds"].append(r)
    return scen


def aggregate(t):
    ok = [r for r in t["rounds"] if r["status"] == "ok"]
    agg = {"label": t["label"], "rounds_ok": len(ok), "rounds_total": len(t["rounds"])}
    if not ok:
        agg["status"] = t["rounds"][-1]["status"] if t["rounds"] else "not run"
        return agg
    med = lambda k: statistics.median(r[k] for r in ok)  # noqa: E731
    agg.update(
        status="ok",
        rps=round(med("rps"), 1),
        rps_min=round(min(r["rps"] for r in ok), 1),
        rps_max=round(max(r["rps"] for r in ok), 1),
        p50_ms=round(med("p50_ms"), 3),
        p90_ms=round(med("p90_ms"), 3),
        p99_ms=round(med("p99_ms"), 3),
        p999_ms=round(med("p999_ms"), 3),
        requests=sum(r["requests"] for r in ok),
        socket_errors=sum(r["socket_errors"] for r in ok),
        non_2xx=sum(r["non_2xx"] for r in ok),
        cpu_target_pct=round(med("cpu_target_pct"), 1),
        cpu_us_per_req=round(med("cpu_us_per_req"), 1),
        cpu_upstream_s=round(med("cpu_upstream_s"), 2),
        foreign_pct_max=max(r["foreign_pct"] for r in ok),
    )
    if any("fresh_used" in r for r in ok):
        agg.update(
            fresh_used=sum(r.get("fresh_used", 0) for r in ok),
            fresh_beyond=sum(r.get("fresh_beyond", 0) for r in ok),
            fresh_wrap=any(r.get("fresh_wrap") for r in ok),
        )
    return agg


def fmt(v, spec):
    return "-" if v is None else format(v, spec)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", required=True)
    ap.add_argument("--meta", required=True)
    ap.add_argument("--checks")
    ap.add_argument("--haproxy-cfg")
    ap.add_argument("--json")
    a = ap.parse_args()

    checks = []
    if a.checks:
        try:
            with open(a.checks) as f:
                for line in f:
                    if line.strip():
                        tgt, check, exp, got, res = line.rstrip("\n").split("\t")
                        checks.append(dict(target=tgt, check=check, expected=exp, got=got, result=res))
        except FileNotFoundError:
            pass
    failed_checks = {}
    for c in checks:
        if c["result"] != "PASS":
            failed_checks[c["target"]] = failed_checks.get(c["target"], 0) + 1
    meta = load_meta(a.meta)
    max_fgn = float(meta.get("max_foreign_pct", 5))
    noisy = []
    exhausted, wrapped = [], []
    scen = load_runs(a.runs)
    out = {"meta": meta, "scenarios": [], "checks": []}

    print()
    print(f"wrk -t{meta.get('wrk_threads')} -c{meta.get('connections')} -d{meta.get('duration_s')}s "
          f"(warm-up {meta.get('warmup_s')}s, rounds {meta.get('rounds')}), path {meta.get('bench_path')}, "
          f"proxy threads/workers {meta.get('proxy_threads')}, {meta.get('nproc')} CPUs ({meta.get('cpu_model')}), "
          f"pinning {meta.get('pin', 'off')}")
    hdr = (f"{'target':<26} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'sock err':>8} {'non-2xx':>8} "
           f"{'CPU %':>6} {'CPU us/req':>10} {'rps/hap':>8} {'p50/hap':>8} {'p99/hap':>8} {'fgn %':>6}")
    for (alg, variant), s in scen.items():
        rows = OrderedDict((name, aggregate(t)) for name, t in s["targets"].items())
        hap = rows.get("haproxy")
        hap_ok = hap is not None and hap.get("status") == "ok"
        for name, r in rows.items():
            if r.get("status") == "ok" and hap_ok:
                r["ratio_vs_haproxy"] = {
                    "rps": round(r["rps"] / hap["rps"], 3) if hap["rps"] else None,
                    "p50": round(r["p50_ms"] / hap["p50_ms"], 3) if hap["p50_ms"] else None,
                    "p99": round(r["p99_ms"] / hap["p99_ms"], 3) if hap["p99_ms"] else None,
                }
        if variant == "single":
            title = f"{alg} / 1 token"
        elif variant == "fresh":
            title = (f"{alg} / fresh token per request (cache miss; pool of {s['ntokens'] - 2:,}, "
                     f"each sent once per verifying target; {meta.get('ntokens')} subs)")
        else:
            title = f"{alg} / {s['ntokens']} distinct tokens (rotating)"
        print(f"\n== {title}")
        print(hdr)
        for name, r in rows.items():
            if r.get("status") != "ok":
                print(f"{r['label']:<26} {'(' + r.get('status', '?') + ')':>9}")
                continue
            ratio = r.get("ratio_vs_haproxy", {})
            ck = name if name != "candidate" else r["label"]
            label = r["label"]
            if failed_checks.get(ck) or failed_checks.get(r["label"]):
                label = (label[:21] + " (!)")
                r["failed_conformance_checks"] = failed_checks.get(ck) or failed_checks.get(r["label"])
            if r.get("fresh_beyond"):
                if r.get("fresh_wrap"):
                    wrapped.append(f"{alg}/{name}")
                else:
                    label = label[:21] + " (x)"
                    exhausted.append(f"{alg}/{name} ({r['fresh_beyond']:,} requests beyond the pool)")
            print(f"{label:<26} {r['rps']:>9,.0f} {r['p50_ms']:>8.2f} {r['p99_ms']:>8.2f} "
                  f"{r['socket_errors']:>8} {r['non_2xx']:>8} {r['cpu_target_pct']:>6.0f} {r['cpu_us_per_req']:>10.1f} "
                  f"{fmt(ratio.get('rps'), '>8.2f')} {fmt(ratio.get('p50'), '>8.2f')} {fmt(ratio.get('p99'), '>8.2f')} "
                  f"{r['foreign_pct_max']:>6.1f}")
            if r["foreign_pct_max"] >= max_fgn:
                noisy.append(f"{alg}/{variant}/{name}")
            if r["rounds_total"] > 1:
                print(f"{'':<26} (req/s over {r['rounds_ok']} rounds: min {r['rps_min']:,.0f} max {r['rps_max']:,.0f})")
        if variant == "fresh":
            parts = []
            for name, r in rows.items():
                if "fresh_used" not in r:
                    continue
                p = f"{r['label']} {r['fresh_used']:,}"
                if r["fresh_beyond"]:
                    p += f" + {r['fresh_beyond']:,} {'wrapped' if r['fresh_wrap'] else 'BEYOND POOL'}"
                parts.append(p)
            if parts:
                print(f"  fresh tokens handed out in the measured run(s): {'; '.join(parts)}")
        out["scenarios"].append({
            "alg": alg, "variant": variant, "tokens": s["ntokens"],
            "results": [dict(target=n, **r) for n, r in rows.items()],
            "rounds_raw": {n: t["rounds"] for n, t in s["targets"].items()},
        })
    if noisy:
        print(f"\nWARNING: other processes used >= {max_fgn:.0f}% of all CPUs during: {', '.join(noisy)} "
              "-- those numbers are skewed; rerun on a quiet machine (--retry-noisy / --wait-quiet help).")
    out["noisy_runs"] = noisy
    if exhausted:
        print(f"\nWARNING (x): the fresh token pool ran out during: {', '.join(exhausted)} -- wrk stopped that "
              "thread (its last requests carried 'pool-exhausted', answered 401 if still counted in non-2xx): "
              "req/s is understated; rerun with a higher --fresh-rate or --fresh-tokens.")
    if wrapped:
        print(f"\nfresh, 'wrapped': the no-auth reference rows ({', '.join(wrapped)}) went through their part of "
              "the pool (at most 200k tokens) and started over: harmless, upstream and nginx never read the "
              "token and the per-request wrk cost is the same.")
    out["fresh_exhausted"] = exhausted
    if "fresh" in meta.get("variants", "").split(","):
        skipped = [x for x in meta.get("algs", "").split(",") if x and x not in meta.get("fresh_algs", "").split()]
        if skipped:
            print(f"\nfresh variant not run for {', '.join(skipped)}: minting a pool that size in Python is too "
                  "slow (RS256 ~2,000 tokens/s per core); --fresh-tokens N forces it.")
    if failed_checks:
        print("\n(!) = failed conformance checks: " + ", ".join(f"{t}: {n}" for t, n in failed_checks.items())
              + " -- its speed may come from not doing the work.")
    print("\nCPU % / CPU us/req: CPU time of the target's process tree during the measured run "
          "(for 'upstream' the upstream itself; for proxies the proxy only). non-2xx = wrk status errors (>= 400).\n"
          "fgn % = CPU used by processes outside the bench during the run, in % of all CPUs (max over rounds).")

    out["checks"] = checks
    if checks:
        by_t = OrderedDict()
        for c in out["checks"]:
            d = by_t.setdefault(c["target"], [0, 0])
            d[0 if c["result"] == "PASS" else 1] += 1
        if by_t:
            print("conformance checks: " + "; ".join(f"{t}: {p} pass, {f} fail" for t, (p, f) in by_t.items()))
    if a.haproxy_cfg:
        with open(a.haproxy_cfg) as f:
            out["haproxy_cfg"] = f.read()
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=2)
        print(f"JSON written to {a.json}")


if __name__ == "__main__":
    sys.exit(main())
