"""What the clean stage removed: documents and bytes per reason, boilerplate cut, examples of each.

Each reason names the params key that controls it, and each example leads with why it was removed (the
measured value against the threshold, or the copy that was kept). A reason that removes more than
WARN_SHARE of the input bytes gets a warning line on the console, since that is usually a threshold that
does not suit the corpus rather than junk.

Each block of documents (one input part) gets its own CleanReport, merged
into the stage's in block order (`merge`), so the metrics
(metrics/clean.json) and the markdown report (reports/clean/removed.md) are
the same whichever engine ran and wherever each block was cleaned.
"""
from __future__ import annotations

import collections
from pathlib import Path

from stages.lib.data.quality import BOUNDS

MAX_BOILERPLATE_KINDS = 10_000  # distinct boilerplate units counted for the report's examples
WARN_SHARE = 0.2  # a reason that removes more than this share of the input bytes is worth a look
# The params keys that decide each reason (quality_* reasons name their filter's bounds).
KEYS = {
    "too_short": "clean.min_chars",
    "too_long": "clean.max_chars",
    "pii": "clean.pii.action",
    "exact_duplicate": "clean.exact_dedupe",
    "near_duplicate": "clean.near_dedupe.threshold, clean.near_dedupe.containment",
    "too_short_after_boilerplate": "clean.line_dedupe.min_docs, clean.min_chars",
}


def params_key(reason: str) -> str:
    """The params keys to change to remove less for this reason."""
    if reason.startswith("quality_"):
        bounds = [key for key in BOUNDS.get(reason[len("quality_"):], ()) if key]
        return ", ".join(f"clean.quality.{key}" for key in bounds) + " (or drop it from clean.quality.filters)"
    return KEYS.get(reason, "clean")


class CleanReport:
    """Counts documents and bytes per removal reason, and keeps a few examples of each."""

    def __init__(self, examples_per_reason: int):
        self.examples_per_reason = examples_per_reason
        self.docs_in = self.bytes_in = self.docs_out = self.bytes_out = 0
        self.removed_docs: collections.Counter = collections.Counter()
        self.removed_bytes: collections.Counter = collections.Counter()
        self.pii: collections.Counter = collections.Counter()
        self.examples: dict[str, list[tuple[str, str]]] = collections.defaultdict(list)
        # Boilerplate is cut from documents that stay: lines, not documents, so counted apart.
        self.boilerplate_units = self.boilerplate_docs = self.boilerplate_bytes = 0
        self.boilerplate_examples: collections.Counter = collections.Counter()  # unit -> times cut

    def cut_boilerplate(self, units: list[str]) -> None:
        self.boilerplate_units += len(units)
        self.boilerplate_docs += 1
        self.boilerplate_bytes += sum(len(unit.encode("utf-8")) + 1 for unit in units)  # +1: its line break
        for unit in map(str.strip, units):
            # Counted while the table is small or the unit already in it: memory stays bounded.
            if unit in self.boilerplate_examples or len(self.boilerplate_examples) < MAX_BOILERPLATE_KINDS:
                self.boilerplate_examples[unit] += 1

    def summary(self, report_path: Path) -> str:
        """One line for the console: documents removed per reason, then boilerplate cut from kept ones
        (the markdown written to report_path shows examples)."""
        removed = ", ".join(f"{n} {reason}" for reason, n in sorted(self.removed_docs.items())) or "none"
        line = f"removed {sum(self.removed_docs.values())} documents ({removed})"
        if self.pii:
            kinds = ", ".join(f"{n} {kind}" for kind, n in sorted(self.pii.items()))
            line += f"; personal data found: {kinds}"
        if self.boilerplate_units:
            line += (f"; cut {self.boilerplate_units} boilerplate lines ({self.boilerplate_bytes / 1e3:.1f} KB) "
                     f"from {self.boilerplate_docs} documents, see {report_path}")
        return line

    def warnings(self) -> list[str]:
        """A line for each reason that removed more than WARN_SHARE of the input bytes."""
        lines = []
        for reason, nbytes in sorted(self.removed_bytes.items()):
            if self.bytes_in and nbytes > WARN_SHARE * self.bytes_in:
                lines.append(f"warning: {reason} removed {nbytes / self.bytes_in:.0%} of the bytes "
                             f"({self.removed_docs[reason]} documents): if that is good text, change "
                             f"{params_key(reason)}; each example's value is in the report")
        return lines

    def remove(self, reason: str, doc_id: str, nbytes: int, excerpt: str) -> None:
        self.removed_docs[reason] += 1
        self.removed_bytes[reason] += nbytes
        if len(self.examples[reason]) < self.examples_per_reason:
            self.examples[reason].append((doc_id, excerpt))

    def merge(self, other: "CleanReport") -> None:
        """Add the report of a later block of documents: counts add up, each reason keeps its first examples
        in document order, and boilerplate kinds are counted as `cut_boilerplate` counts them."""
        self.docs_in += other.docs_in
        self.bytes_in += other.bytes_in
        self.docs_out += other.docs_out
        self.bytes_out += other.bytes_out
        self.removed_docs.update(other.removed_docs)
        self.removed_bytes.update(other.removed_bytes)
        self.pii.update(other.pii)
        for reason, examples in other.examples.items():
            room = self.examples_per_reason - len(self.examples[reason])
            self.examples[reason] += examples[:max(room, 0)]
        self.boilerplate_units += other.boilerplate_units
        self.boilerplate_docs += other.boilerplate_docs
        self.boilerplate_bytes += other.boilerplate_bytes
        for unit, times in other.boilerplate_examples.items():
            if unit in self.boilerplate_examples or len(self.boilerplate_examples) < MAX_BOILERPLATE_KINDS:
                self.boilerplate_examples[unit] += times

    def metrics(self) -> dict:
        flat = {"documents_in": self.docs_in, "bytes_in": self.bytes_in,
                "documents_out": self.docs_out, "bytes_out": self.bytes_out,
                "boilerplate_units_removed": self.boilerplate_units,
                "boilerplate_bytes_removed": self.boilerplate_bytes}
        for reason in sorted(self.removed_docs):
            flat[f"removed_documents_{reason}"] = self.removed_docs[reason]
            flat[f"removed_bytes_{reason}"] = self.removed_bytes[reason]
        for kind in sorted(self.pii):
            flat[f"pii_{kind}"] = self.pii[kind]
        return flat

    def markdown(self) -> str:
        share = lambda n: f"{n / self.bytes_in:.1%}" if self.bytes_in else "-"  # noqa: E731
        lines = ["# Removed by clean", "", f"Of {self.docs_in} documents, {self.bytes_in} bytes.", "",
                 "| reason | documents | bytes | share of bytes | params key |", "|---|---:|---:|---:|---|"]
        lines += [f"| {r} | {self.removed_docs[r]} | {self.removed_bytes[r]} | {share(self.removed_bytes[r])} | "
                  f"`{params_key(r)}` |" for r in sorted(self.removed_docs)]
        if self.boilerplate_units:
            lines += [f"| boilerplate lines (cut from {self.boilerplate_docs} kept documents) | "
                      f"{self.boilerplate_units} lines | {self.boilerplate_bytes} | {share(self.boilerplate_bytes)} "
                      f"| `clean.line_dedupe` |"]
            lines += ["", "## boilerplate", "", "The most frequent units cut (clean.line_dedupe), with the times "
                      "each was cut:", ""]
            for unit, times in self.boilerplate_examples.most_common(self.examples_per_reason * 4):
                lines.append(f"- {times}x: {unit[:300]}")
        if self.pii:
            lines += ["", "## personal data", "",
                      "Found in the documents that passed the filters (`clean.pii.kinds`), each replaced with its "
                      "tag, or its document dropped (`clean.pii.action`):", "", "| kind | found |", "|---|---:|"]
            lines += [f"| {kind} | {n} |" for kind, n in sorted(self.pii.items())]
        for reason in sorted(self.examples):
            lines += ["", f"## {reason}", "", f"Controlled by `{params_key(reason)}`. Each example starts with why "
                      "it was removed:", ""]
            for doc_id, excerpt in self.examples[reason]:
                quoted = excerpt.strip().replace("\n", " ⏎ ")[:300]
                lines.append(f"- `{doc_id}`: {quoted}")
        return "\n".join(lines) + "\n"
