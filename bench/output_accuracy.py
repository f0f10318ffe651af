#!/usr/bin/env python3
"""Output-lineage and distillation accuracy on families with known lineage.

usage: bench/output_accuracy.py [--prov build/cli/prov] --sigs DIR [--scores-tag TAG]
                                [--no-scores] [--jobs N] [--json OUT] [--references NAME...]
                                FAMILY_DIR[=PREFIX]...

For every family (a `prov zoo build` folder or zoo-dev, with labels.json), model NAME's signature
is DIR/PREFIX+NAME.sig (collected with `prov probe MODEL --suite natural-v1:N`) and its scores of
the family's cross-likelihood suite DIR/PREFIX+NAME.TAG.sig (`prov suite cross` over every
signature of the family, then `prov probe MODEL --suite that.jsonl`).

References are the family's roots (bases and independents). For reference R the controls are
the other roots with R's architecture and tokenizer (its seed twins) when there are at least 3,
else every other root (leave-one-out from the independents). Every other model of the family
is a candidate: positive when R is among its ancestors (weights or distillation), negative
otherwise. Each pair runs `prov compare C.sig R.sig --outputs-only --controls ... --scores ...
--json`. Reports, per class: TPR at alpha = 0.01 and 0.05 (p-value thresholds), AUROC of -log p,
TPR at empirical FPR 1 % / 5 %; calibration (fraction of negatives with p < alpha) overall and
on same-recipe negatives (candidate and reference share architecture, tokenizer and data); kind
and direction accuracy on distilled pairs; and the TPR-vs-probes curve from each pair's curve.
Only the Python standard library; the statistics are prov's.
"""
import argparse, concurrent.futures, json, math, os, re, subprocess, sys, time

WEIGHT_DERIVED = {"finetuned", "finetune", "quantized", "permuted", "noised", "pruned", "merged"}


def load_family(spec, sigs, tag, use_scores):
    d, _, prefix = spec.partition("=")
    labels = json.load(open(os.path.join(d, "labels.json")))["models"]
    models = {}
    for name, m in labels.items():
        sig = os.path.join(sigs, prefix + name + ".sig")
        if not os.path.isdir(os.path.join(d, name)) or not os.path.exists(sig):
            continue
        sc = os.path.join(sigs, prefix + name + "." + tag + ".sig")
        models[name] = dict(name=name, family=d, sig=sig,
                            scores=sc if use_scores and os.path.exists(sc) else None,
                            relation=m["relation"], parent=m.get("parent"),
                            arch=m.get("architecture", m.get("detail", "").split(" ")[0]),
                            tokenizer=m.get("tokenizer", "main"),
                            detail=m.get("detail", ""))
    return models


def ancestors(models, name):
    out, p = [], models[name]["parent"]
    while p:
        out.append(p)
        p = models[p]["parent"] if p in models else None
    return out


def cls(m):
    r = m["relation"]
    name = re.sub(r"_s[0-9]+$", "", m["name"])  # replicate students (--student-seeds)
    if r in WEIGHT_DERIVED:
        return "weight-derived"
    if r == "distilled_seq":
        if m["tokenizer"] != "main":
            return "distilled_seq (other tokenizer)"
        for pct in ("100", "50", "20"):
            if name.endswith("_" + pct):
                return "distilled_seq %s %%" % pct
        return "distilled_seq 100 %"
    return r


def auroc(pos, neg):
    if not pos or not neg:
        return float("nan")
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def tpr_at(pos, neg, fpr):
    neg = sorted(neg, reverse=True)
    k = int(fpr * len(neg))
    thr = neg[k] if k < len(neg) else float("-inf")
    return sum(p > thr for p in pos) / len(pos)


def score(p):
    return -math.log10(max(p, 1e-300))


def run_pair(prov, job):
    cmd = [prov, "compare", job["c"]["sig"], job["r"]["sig"], "--outputs-only", "--json",
           "--controls"] + [k["sig"] for k in job["controls"]]
    sc = [m["scores"] for m in [job["c"], job["r"]] + job["controls"] if m["scores"]]
    if len(sc) == 2 + len(job["controls"]):
        cmd += ["--scores"] + sc
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        return dict(job, error=p.stderr.strip())
    return dict(job, result=json.loads(p.stdout))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prov", default="build/cli/prov")
    ap.add_argument("--sigs", required=True)
    ap.add_argument("--scores-tag", default="x1000")
    ap.add_argument("--no-scores", action="store_true")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--json")
    ap.add_argument("--references", nargs="*", help="only these references (default: every root)")
    ap.add_argument("families", nargs="+")
    a = ap.parse_args()
    jobs = []
    for spec in a.families:
        models = load_family(spec, a.sigs, a.scores_tag, not a.no_scores)
        roots = [n for n, m in models.items() if m["parent"] is None]
        for r in sorted(roots):
            if a.references and r not in a.references:
                continue
            mr = models[r]
            peers = [n for n in roots if n != r and models[n]["arch"] == mr["arch"]
                     and models[n]["tokenizer"] == mr["tokenizer"]]
            ctrl = peers if len(peers) >= 3 else [n for n in roots if n != r]
            for c in sorted(models):
                if c == r:
                    continue
                mc = models[c]
                related = r in ancestors(models, c)
                same_recipe = (not related and mc["parent"] is None and
                               mc["arch"] == mr["arch"] and mc["tokenizer"] == mr["tokenizer"] and
                               c in peers)
                jobs.append(dict(c=mc, r=mr, controls=[models[k] for k in ctrl if k != c],
                                 related=related, same_recipe=same_recipe,
                                 cls=cls(mc) if related else "independent",
                                 direct=mc["parent"] == r))
    t0 = time.time()
    with concurrent.futures.ThreadPoolExecutor(a.jobs) as ex:
        rows = list(ex.map(lambda j: run_pair(a.prov, j), jobs))
    elapsed = time.time() - t0
    errors = [r for r in rows if "error" in r]
    ok = [r for r in rows if "result" in r and r["result"]["p_value"] is not None]
    incon = [r for r in rows if "result" in r and r["result"]["p_value"] is None]
    neg = [r for r in ok if not r["related"]]
    same = [r for r in neg if r["same_recipe"]]
    out = dict(pairs=len(rows), errors=len(errors), inconclusive=len(incon),
               seconds_per_pair=elapsed / max(1, len(rows)))
    print("%d pairs (%d errors, %d inconclusive), %.2f s/pair" %
          (len(rows), len(errors), len(incon), out["seconds_per_pair"]))
    for e in errors[:5]:
        print("  error:", e["c"]["name"], e["r"]["name"], e["error"][:200])
    print("\ncalibration (negatives: reference not an ancestor of the candidate)")
    cal = {}
    for label, group in (("all negatives", neg), ("same-recipe negatives (seed twins)", same)):
        n = len(group)
        f1 = sum(r["result"]["p_value"] < 0.01 for r in group) / max(1, n)
        f5 = sum(r["result"]["p_value"] < 0.05 for r in group) / max(1, n)
        cal[label] = dict(n=n, p_lt_001=f1, p_lt_005=f5)
        print("  %-38s n=%4d  p<0.01: %.3f  p<0.05: %.3f" % (label, n, f1, f5))
    out["calibration"] = cal
    print("\ndetection by class (TPR at alpha = p-value threshold; AUROC and TPR at empirical FPR "
          "against all negatives)")
    print("  %-34s %4s %9s %9s %7s %9s %9s" % ("class", "n", "TPR@.01", "TPR@.05", "AUROC",
                                               "TPR@F1%", "TPR@F5%"))
    negs = [score(r["result"]["p_value"]) for r in neg]
    classes = {}
    for r in ok:
        if r["related"]:
            classes.setdefault(r["cls"], []).append(r)
    by_class = {}
    for c in sorted(classes):
        g = classes[c]
        pos = [score(r["result"]["p_value"]) for r in g]
        row = dict(n=len(g),
                   tpr_001=sum(r["result"]["p_value"] <= 0.01 for r in g) / len(g),
                   tpr_005=sum(r["result"]["p_value"] <= 0.05 for r in g) / len(g),
                   auroc=auroc(pos, negs), tpr_fpr1=tpr_at(pos, negs, 0.01),
                   tpr_fpr5=tpr_at(pos, negs, 0.05),
                   pairs={r["c"]["name"] + " <- " + r["r"]["name"]: r["result"]["p_value"]
                          for r in g})
        by_class[c] = row
        print("  %-34s %4d %9.2f %9.2f %7.3f %9.2f %9.2f" % (c, row["n"], row["tpr_001"],
                                                           row["tpr_005"], row["auroc"],
                                                           row["tpr_fpr1"], row["tpr_fpr5"]))
        for k, v in row["pairs"].items():
            print("      %-40s p = %.3g" % (k, v))
    out["classes"] = by_class
    dist = [r for r in ok if r["related"] and r["c"]["relation"].startswith("distilled")]
    named = [r for r in dist if r["result"]["relation"] == "related"]
    kind_ok = sum(r["result"]["kind"] == r["c"]["relation"] for r in named)
    dirs = [r for r in named if "direction" in r["result"]]
    confident = [r for r in dirs if r["result"]["direction"]["bootstrap_agreement"] >= 0.95]
    dir_ok = sum(r["result"]["direction"]["teacher"] == "reference" for r in confident)
    print("\ndistilled pairs detected at alpha 0.01: %d / %d; kind named correctly: %d / %d"
          % (len(named), len(dist), kind_ok, len(named)))
    print("direction: %d of %d detected pairs have bootstrap confidence >= 0.95; %d of those "
          "name the reference as the teacher" % (len(confident), len(dirs), dir_ok))
    out["distilled"] = dict(detected=len(named), total=len(dist), kind_correct=kind_ok,
                            direction_confident=len(confident), direction_correct=dir_ok)
    # Curve: TPR (alpha 0.01) per class and FPR against the number of probes.
    grid = sorted({pt["probes"] for r in ok for pt in r["result"]["curve"]})
    print("\nprobes curve: fraction with p <= 0.01 at n probes")
    print("  %-34s " % "class" + " ".join("%6d" % g for g in grid))
    curve = {}
    for c in sorted(classes) + ["negatives"]:
        g = classes.get(c, neg if c == "negatives" else [])
        vals = []
        for n in grid:
            pts = [pt for r in g for pt in r["result"]["curve"] if pt["probes"] == n]
            vals.append(sum(pt["p_value"] <= 0.01 for pt in pts) / len(pts) if pts else None)
        curve[c] = dict(zip(grid, vals))
        print("  %-34s " % c + " ".join("%6s" % ("-" if v is None else "%.2f" % v) for v in vals))
    out["curve"] = curve
    if a.json:
        json.dump(dict(summary=out, rows=[dict(candidate=r["c"]["name"], reference=r["r"]["name"],
                                               related=r["related"], cls=r["cls"],
                                               result=r.get("result"), error=r.get("error"))
                                          for r in rows]), open(a.json, "w"), indent=1)


if __name__ == "__main__":
    main()
