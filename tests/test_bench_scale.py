"""bench/scale.py's parts, without its runs (minutes of Ray): the corpus it builds, the probe that measures the
driver, and the arithmetic of the 1 TB estimate."""
from __future__ import annotations

import collections
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import scale  # noqa: E402


def test_the_corpus_has_its_planted_copies_and_boilerplate_in_files_of_file_docs(tmp_path, monkeypatch):
    monkeypatch.setattr(scale, "FILE_DOCS", 1000)
    scale.build_corpus(tmp_path / "raw", 2500, scale.sample_words()[:5000])
    files = sorted((tmp_path / "raw").glob("*.jsonl"))
    texts = [json.loads(line)["text"] for f in files for line in f.read_text().splitlines()]
    assert [f.name for f in files] == ["docs-00000.jsonl", "docs-00001.jsonl", "docs-00002.jsonl"]
    assert len(texts) == 2500 and all(250 <= len(t) <= 1000 for t in texts)
    copies = sum(n - 1 for n in collections.Counter(texts).values())
    assert 0.5 * scale.EXACT * 2500 < copies < 2 * scale.EXACT * 2500
    with_notice = sum(any(line in t for line in scale.BOILERPLATE_LINES) for t in texts)
    assert 0.5 * scale.BOILERPLATE * 2500 < with_notice < 2 * scale.BOILERPLATE * 2500


def test_the_probe_writes_the_peak_memory_and_cpu_of_the_module_it_ran(tmp_path):
    out = tmp_path / "usage.json"
    subprocess.run([sys.executable, str(ROOT / "bench/_probe.py"), str(out), "this"], check=True,
                   capture_output=True, cwd=tmp_path)
    usage = json.loads(out.read_text())
    assert usage["peak_rss_bytes"] > 1 << 20 and usage["cpu_seconds"] > 0


def test_the_estimate_adds_the_drivers_growing_cpu_as_serial_time(capsys):
    """Work and driver CPU that grow linearly with the corpus: the table follows from them."""
    def runs(docs: int) -> dict[str, scale.Run]:
        return {s: scale.Run(s, docs, docs * 500, wall=docs / 1000, peak=100 << 20, cpu=1.0 + docs * 2e-6)
                for s in scale.STAGES}
    scale.print_ratios(runs(10_000), runs(100_000), cpus=2)
    out = capsys.readouterr().out
    assert "driver peak large/small: merge 1.00x" in out
    assert "us per input document: merge 2.0, clean 2.0, pack 2.0" in out
    docs_per_tb = scale.TB / 500
    core_hours = 3 * docs_per_tb / 1000 * 2 / 3600  # three stages at 1,000 documents per second on 2 CPUs
    serial_hours = 3 * docs_per_tb * 2e-6 / 3600
    for nodes in scale.NODES:
        ideal = core_hours / (nodes * scale.NODE_CORES)
        row = next(line for line in out.splitlines() if line.split()[:1] == [str(nodes)])
        assert [float(x.rstrip("x")) for x in row.split()[2:]] == pytest.approx(
            [ideal, ideal + serial_hours, (ideal + serial_hours) / ideal], rel=0.01)
