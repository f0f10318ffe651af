#!/usr/bin/env python3
"""Weight-lineage accuracy on families with known lineage (prov compare on every ordered pair).

usage: bench/weight_accuracy.py [--prov build/cli/prov] [--permutations N] [--json OUT] FAMILY_DIR...

Each FAMILY_DIR holds model folders and a labels.json: either the `prov zoo build` layout
({"models": {name: {relation, parent, ...}}}) or zoo-dev's ({"models": {name: {relation, parent}}}
with relation "finetune"). Two models are weight-related when they are in the same family and
their weight roots (following parent links through weight derivations) are equal; every other
pair, including pairs across families, is independent under H0. Reports:
  * calibration of the p-value (test A) on independent pairs: fraction with p < 0.01 and < 0.05,
    over all ordered pairs and over unique pairs of weight roots (weight derivatives of one base
    are near copies, so the ordered pairs repeat the same comparison many times);
  * AUROC and TPR at FPR 1 % / 5 % of the score max(z_A, z_B) for related vs independent;
  * relation named correctly on direct (candidate, parent) pairs;
  * time per pair.
Only the Python standard library; the comparisons are prov's.
"""
import argparse, itertools, json, os, subprocess, sys, time

WEIGHT_DERIVED = {"finetuned", "finetune", "quantized", "permuted", "noised", "pruned", "merged"}


def load_family(d):
    labels = json.load(open(os.path.join(d, "labels.json")))["models"]
    out = {}
    for name, m in labels.items():
        if not os.path.isdir(os.path.join(d, name)):
            continue
        out[name] = m
    def root(n):
        m = labels[n]
        if m["relation"] in WEIGHT_DERIVED and m.get("parent"):
            return root(m["parent"])
        return n
    return {os.path.join(d, n): dict(family=d, root=root(n), relation=m["relation"],
                                     parent=m.get("parent")) for n, m in out.items()}


def auroc(pos, neg):
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def tpr_at(pos, neg, fpr):
    neg = sorted(neg, reverse=True)
    k = int(fpr * len(neg))  # at most k negatives above the threshold
    thr = neg[k] if k < len(neg) else float("-inf")
    return sum(p > thr for p in pos) / len(pos)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--prov", default="build/cli/prov")
    ap.add_argument("--permutations", type=int, default=999)
    ap.add_argument("--json")
    ap.add_argument("families", nargs="+")
    a = ap.parse_args()
    models = {}
    for f in a.families:
        models.update(load_family(f))
    rows = []
    t0 = time.time()
    for c, r in itertools.permutations(sorted(models), 2):
        mc, mr = models[c], models[r]
        related = mc["family"] == mr["family"] and mc["root"] == mr["root"]
        p = subprocess.run([a.prov, "compare", c, r, "--json", "--permutations",
                            str(a.permutations)], capture_output=True, text=True)
        if p.returncode != 0:
            rows.append(dict(candidate=c, reference=r, related=related, error=p.stderr.strip()))
            continue
        j = json.loads(p.stdout)
        ev = {e["method"]: e for e in j["evidence"]}
        za = ev.get("gram-permutation", {}).get("z_score")
        zb = ev.get("aligned-gram", {}).get("value")
        direct = mc["family"] == mr["family"] and mc["parent"] == os.path.basename(r)
        rows.append(dict(candidate=c, reference=r, related=related, direct=direct,
                         expected=mc["relation"], relation=j["relation"], p=j["p_value"],
                         z_a=za, z_b=zb))
    elapsed = time.time() - t0
    ok = [x for x in rows if "error" not in x]
    decided = ("identical", "converted", "quantized")
    score = lambda x: float("inf") if x["relation"] in decided else max(
        v for v in (x["z_a"], x["z_b"], float("-inf")) if v is not None)
    pos = [score(x) for x in ok if x["related"]]
    neg = [score(x) for x in ok if not x["related"]]
    ind_p = [x["p"] for x in ok if not x["related"] and x["p"] is not None]
    # One comparison per unordered pair of roots: the pair of the roots themselves.
    is_root = lambda m: os.path.basename(m) == models[m]["root"]
    uniq_p = [x["p"] for x in ok if not x["related"] and x["p"] is not None
              and is_root(x["candidate"]) and is_root(x["reference"])
              and x["candidate"] < x["reference"]]
    named = [x for x in ok if x["direct"] and x["expected"] in WEIGHT_DERIVED | {"quantized"}]
    norm = lambda s: "finetuned" if s == "finetune" else s
    correct = sum(norm(x["expected"]) == x["relation"] for x in named)
    summary = {
        "pairs": len(rows), "errors": len(rows) - len(ok), "related": len(pos),
        "independent": len(neg), "seconds_per_pair": elapsed / max(len(rows), 1),
        "auroc": auroc(pos, neg) if pos and neg else None,
        "tpr_at_fpr_0.01": tpr_at(pos, neg, 0.01) if pos and neg else None,
        "tpr_at_fpr_0.05": tpr_at(pos, neg, 0.05) if pos and neg else None,
        "independent_with_p": len(ind_p),
        "frac_p_below_0.01": sum(p < 0.01 for p in ind_p) / max(len(ind_p), 1),
        "frac_p_below_0.05": sum(p < 0.05 for p in ind_p) / max(len(ind_p), 1),
        "unique_root_pairs_with_p": len(uniq_p),
        "unique_frac_p_below_0.01": sum(p < 0.01 for p in uniq_p) / max(len(uniq_p), 1),
        "unique_frac_p_below_0.05": sum(p < 0.05 for p in uniq_p) / max(len(uniq_p), 1),
        "independent_named_related": sum(x["relation"] not in ("independent", "inconclusive")
                                         for x in ok if not x["related"]),
        "related_missed": sum(x["relation"] in ("independent", "inconclusive")
                              for x in ok if x["related"]),
        "direct_pairs": len(named), "relation_correct": correct,
        "misnamed": [(os.path.basename(x["candidate"]), x["expected"], x["relation"])
                     for x in named if norm(x["expected"]) != x["relation"]],
        "max_independent_score": max(neg) if neg else None,
        "min_related_score": min(pos) if pos else None,
    }
    if a.json:
        json.dump({"summary": summary, "pairs": rows}, open(a.json, "w"), indent=1)
    json.dump(summary, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
