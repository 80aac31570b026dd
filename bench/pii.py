"""PII scrubber: recall and precision per kind on a labelled set, and scrub throughput.

    python bench/pii.py                      # dev, heldout, fresh, real and independent sets, then MB/s
    python bench/pii.py --show 20            # also the first 20 misses and false hits per set
    python bench/pii.py --impl OLD_PII.py    # score a single-file pii.py from before stages/lib/data/pii/
                                             # (`git show COMMIT:stages/lib/data/pii.py > /tmp/old.py`)

The sets are bench/pii/{dev,heldout,fresh,real}.jsonl, made by bench/pii/generate.py
(see there: faker in ten locales in realistic settings, and real mail headers), and
bench/pii/independent.jsonl, one draw of bench/pii/independent_gen.py, a generator written
by a separate evaluator who never saw the scrubber (its own record format, read by
load_set; its US phone extensions and Message-IDs are neither gold nor look-alikes).
All seven kinds are enabled, as in the default params.

Matching, span-level:
- a gold span is found when every character of it lies inside some replaced
  span, of any kind (a phone number taken for a card is gone all the same; no
  part of it may survive). Recall per kind is by the gold kind.
- a replaced span is a false positive when it overlaps no gold span (nor a span
  the set marks "ignore"). Precision per kind is by the replaced span's kind.
- a hit of another kind than the gold one is counted as found and as precise,
  and listed under "kind mix-ups".
Look-alikes ("negatives") are labelled by class, so a false positive on one is
reported against its class (version4, oid, date, ...).

Throughput: scrub() alone, one process, on each file of data/raw/shakespeare-milton
(mostly clean prose, whole files as clean sees them) and on the labelled texts
(PII-dense); the best of --repeats runs.
"""
from __future__ import annotations

import argparse
import collections
import importlib.util
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SETS = ROOT / "bench" / "pii"
PROSE = ROOT / "data" / "raw" / "shakespeare-milton"
KINDS = ("email", "phone", "ipv4", "ipv6", "credit_card", "iban", "secret")


def load_scrubber(path: Path | None):
    """PiiScrubber and the cache of phone verdicts (None where there is none): the package's,
    or those of a single-file pii.py."""
    if path is None:
        sys.path.insert(0, str(ROOT))
        from stages.lib.data.pii import phone, scrub
        return scrub.PiiScrubber, phone._national_ok
    spec = importlib.util.spec_from_file_location("pii_under_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.PiiScrubber, getattr(module, "_national_ok", None)


def load_set(name: str) -> list[dict]:
    with (SETS / f"{name}.jsonl").open(encoding="utf-8") as f:
        return [from_independent(r) if "pos" in r else r for r in map(json.loads, f)]


def from_independent(r: dict) -> dict:
    """A record of independent_gen.py ({pos, neg, aux, ign} of {start, end, kind/tag}) in this
    bench's format ({spans, negatives, ignore} of [start, end, kind/class])."""
    return dict(id=f"{r['setting']}-{r['locale']}-{r['id']}", text=r["text"],
                spans=[[s["start"], s["end"], s["kind"]] for s in r["pos"]],
                negatives=[[s["start"], s["end"], s["tag"]] for s in r["neg"]],
                ignore=[[s["start"], s["end"], s["tag"]] for s in r["aux"] + r["ign"]])


def covered(start: int, end: int, hits: list[tuple[str, int, int]]) -> bool:
    """Every character of [start, end) lies inside some hit."""
    pos = start
    for _, s, e in hits:  # sorted, non-overlapping
        if s <= pos < e:
            pos = e
            if pos >= end:
                return True
    return pos >= end


def overlaps(s: int, e: int, spans) -> list:
    return [span for span in spans if span[0] < e and s < span[1]]


def score(scrubber, records: list[dict]) -> dict:
    found, gold = collections.Counter(), collections.Counter()
    tp, predicted = collections.Counter(), collections.Counter()
    fp_class, mixups = collections.Counter(), collections.Counter()
    misses, false_hits = [], []
    for r in records:
        text, spans = r["text"], r["spans"]
        hits = scrubber.find(text)
        for s, e, kind in spans:
            gold[kind] += 1
            if covered(s, e, hits):
                found[kind] += 1
            else:
                misses.append(f"{kind:11} {text[s:e]!r}  [{r['id']}]  {text[max(0, s - 30):e + 30]!r}")
        for kind, s, e in hits:
            if overlaps(s, e, r.get("ignore", [])):
                continue
            predicted[kind] += 1
            golds = overlaps(s, e, spans)
            if golds:
                tp[kind] += 1
                for g in golds:
                    if g[2] != kind:
                        mixups[f"{g[2]}->{kind}"] += 1
            else:
                negs = overlaps(s, e, r["negatives"])
                fp_class[negs[0][2] if negs else "unlabelled text"] += 1
                false_hits.append(f"{kind:11} {text[s:e]!r}  [{r['id']}]  {text[max(0, s - 30):e + 30]!r}")
    return dict(found=found, gold=gold, tp=tp, predicted=predicted, fp_class=fp_class, mixups=mixups,
                misses=misses, false_hits=false_hits, negatives=sum(len(r["negatives"]) for r in records))


def ratio(a: int, b: int) -> str:
    return f"{a / b:.3f}" if b else "  -  "


def report(name: str, result: dict, show: int) -> None:
    found, gold, tp, predicted = result["found"], result["gold"], result["tp"], result["predicted"]
    print(f"\n== {name}: {sum(gold.values())} PII spans, {result['negatives']} look-alikes")
    print(f"{'kind':12} {'spans':>5} {'recall':>7} {'hits':>5} {'precision':>9}")
    for kind in KINDS:
        if gold[kind] or predicted[kind]:
            print(f"{kind:12} {gold[kind]:5d} {ratio(found[kind], gold[kind]):>7} {predicted[kind]:5d} "
                  f"{ratio(tp[kind], predicted[kind]):>9}")
    print(f"{'overall':12} {sum(gold.values()):5d} {ratio(sum(found.values()), sum(gold.values())):>7} "
          f"{sum(predicted.values()):5d} {ratio(sum(tp.values()), sum(predicted.values())):>9}")
    if result["fp_class"]:
        print("false positives by look-alike class:", dict(result["fp_class"].most_common()))
    if result["mixups"]:
        print("kind mix-ups (gold->found, counted as found):", dict(result["mixups"].most_common()))
    for label, items in (("missed", result["misses"]), ("false hit", result["false_hits"])):
        for line in items[:show]:
            print(f"  {label}: {line}")


def throughput(scrubber, texts: list[str], repeats: int, forget=lambda: None) -> float:
    size = sum(len(t.encode("utf-8")) for t in texts)
    best = float("inf")
    for _ in range(repeats):
        forget()
        start = time.perf_counter()
        for text in texts:
            scrubber.scrub(text)
        best = min(best, time.perf_counter() - start)
    return size / 1e6 / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--impl", type=Path, help="a single-file pii.py to score instead of stages/lib/data/pii/")
    parser.add_argument("--sets", nargs="+", default=["dev", "heldout", "fresh", "real", "independent"])
    parser.add_argument("--show", type=int, default=0, help="print this many misses and false hits per set")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-speed", action="store_true")
    args = parser.parse_args()

    scrubber_class, cache = load_scrubber(args.impl)
    scrubber = scrubber_class(list(KINDS))
    print(f"scrubber: {args.impl or 'stages/lib/data/pii/'}")
    totals = collections.Counter()
    for name in args.sets:
        result = score(scrubber, load_set(name))
        report(name, result, args.show)
        if name not in ("real", "independent"):
            for key in ("found", "gold", "tp", "predicted"):
                totals[key] += sum(result[key].values())
    if totals:
        print(f"\nsynthetic sets together (dev, heldout, fresh): recall {ratio(totals['found'], totals['gold'])}, "
              f"precision {ratio(totals['tp'], totals['predicted'])}")
    if args.no_speed:
        return
    prose = [p.read_text(encoding="utf-8") for p in sorted(PROSE.rglob("*.txt"))]
    # Each labelled text once, and the scrubber's cache of phone verdicts emptied before
    # each run, so that no verdict is answered from memory; the first run warms up
    # phonenumbers (metadata, regexes), as the first documents of a corpus would.
    dense = [r["text"] for name in ("dev", "heldout", "real") for r in load_set(name)]
    size = sum(len(text.encode("utf-8")) for text in dense)
    forget = cache.cache_clear if hasattr(cache, "cache_clear") else lambda: None
    print(f"\nscrub throughput, one process: prose {throughput(scrubber, prose, args.repeats):.1f} MB/s "
          f"({sum(len(t.encode()) for t in prose) / 1e6:.1f} MB, {len(prose)} files), "
          f"PII-dense {throughput(scrubber, dense, args.repeats, forget):.1f} MB/s ({size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
