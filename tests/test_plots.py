"""`dvc plots show` renders offline: the repo's plot definitions and HTML template on a tiny dvclive folder,
drawn by a headless chromium with the network off (Debian's chromium and chromium-driver, driven by selenium)."""
from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow  # dvc and a browser: several seconds

STEPS = [0, 100, 200, 300]
CURVES = {"train": {"train_loss": [9.0, 5.4, 4.6, 4.1], "val_loss": [9.01, 5.5, 4.8, 4.4], "lr": [0, 3e-4, 2e-4, 1e-4]},
          "sft": {"train_loss": [3.0, 2.1, 1.8, 1.6], "val_loss": [3.1, 2.3, 2.0, 1.9], "lr": [0, 1e-4, 5e-5, 1e-5]}}


def test_the_template_inlines_the_chart_library_and_loads_nothing():
    page = (ROOT / ".dvc/plots/offline.html").read_text(encoding="utf-8")
    assert "{plot_divs}" in page and "{refresh_tag}" in page
    assert "{scripts}" not in page  # where DVC would put its CDN script tags
    assert re.findall(r'<script data-package="([^"]+)">', page) == ["vega@5.20.2", "vega-lite@5.2.0",
                                                                     "vega-embed@6.18.2"]
    assert not re.search(r"<script[^>]*\bsrc=", page) and "sourceMappingURL" not in page
    vendor = (ROOT / ".dvc/plots/vendor/README.md").read_text()
    for package, code in re.findall(r'<script data-package="([^"]+)">\n(.*?)</script>', page, re.S):
        name, version = package.split("@")
        assert f"`{hashlib.sha256(code.encode()).hexdigest()}`" in vendor  # the recorded npm release, unchanged
        assert f"| {name} | {version} |" in vendor
        licence = (ROOT / f".dvc/plots/vendor/LICENSE-{name}").read_text()
        assert "Redistribution and use in source and binary forms" in licence
    config = (ROOT / ".dvc/config").read_text()
    assert "html_template = plots/offline.html" in config  # plain `dvc plots show` uses it


def write_project(project: Path) -> None:
    """A DVC project holding the repo's dvc.yaml, plot templates and config, and a tiny dvclive folder."""
    subprocess.run(["dvc", "init", "--no-scm", "-q"], cwd=project, check=True)
    shutil.copy(ROOT / "dvc.yaml", project / "dvc.yaml")
    shutil.copy(ROOT / ".dvc/config", project / ".dvc/config")
    shutil.copytree(ROOT / ".dvc/plots", project / ".dvc/plots")
    for run, curves in CURVES.items():
        folder = project / "dvclive" / run / "plots" / "metrics"
        folder.mkdir(parents=True)
        for name, values in curves.items():
            rows = [f"step\t{name}"] + [f"{s}\t{v}" for s, v in zip(STEPS, values)]
            (folder / f"{name}.tsv").write_text("\n".join(rows) + "\n")


def test_loss_curves_share_axes_and_skip_step_0():
    plots = yaml.safe_load((ROOT / "dvc.yaml").read_text())["plots"]
    by_title = {next(iter(p)): next(iter(p.values())) for p in plots}
    for title, run in (("pretraining loss", "train"), ("fine-tuning loss", "sft")):
        spec = by_title[title]
        assert sorted(spec["y"].values()) == ["train_loss", "val_loss"]  # one chart, both curves
        assert all(f"dvclive/{run}/" in path for path in spec["y"])
        template = (ROOT / ".dvc/plots" / f"{spec['template']}.json").read_text()
        assert "\"filter\": \"datum['<DVC_METRIC_X>'] > 0\"" in template


@pytest.fixture(scope="module")
def browser(headless_chromium):
    b = headless_chromium(1200, 900)
    yield b
    b.quit()


def test_dvc_plots_show_renders_offline_in_a_browser(tmp_path, browser):
    from selenium.webdriver.support.ui import WebDriverWait

    write_project(tmp_path)
    proc = subprocess.run(["dvc", "plots", "show", "-o", "out"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    page = tmp_path / "out" / "index.html"
    assert "cdn.jsdelivr" not in page.read_text(encoding="utf-8")
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.emulateNetworkConditions", {"offline": True, "latency": 0,
                                                                 "downloadThroughput": 0, "uploadThroughput": 0})
    browser.get(page.as_uri())
    charts = "return document.querySelectorAll('.vega-embed svg.marks, .vega-embed canvas.marks').length"
    WebDriverWait(browser, 30).until(lambda b: b.execute_script(charts) >= 3)
    assert browser.execute_script(charts) == 3  # pretraining loss, fine-tuning loss, learning rate
    drawn = browser.execute_script(
        "return Array.from(document.querySelectorAll('.vega-embed canvas.marks')).map(c => "
        "c.getContext('2d').getImageData(0, 0, c.width, c.height).data.filter((v, i) => i % 4 == 3 && v).length)")
    assert len(drawn) == 3 and min(drawn) > 1000  # every chart has drawn pixels, not a blank box
    # The pretraining chart again, drawn as SVG to read its axes: it starts after step 0, so its y axis
    # stops below the untrained loss of 9.
    spec = re.search(r"var spec = (.*?);\s*vegaEmbed", page.read_text(encoding="utf-8"), re.S).group(1)
    labels = browser.execute_async_script("""
        const done = arguments[arguments.length - 1], el = document.createElement('div');
        document.body.appendChild(el);
        vegaEmbed(el, JSON.parse(arguments[0]), {renderer: 'svg', actions: false})
            .then(() => done(Array.from(el.querySelectorAll('.role-axis-label text')).map(t => t.textContent)))
            .catch(e => done(['error ' + e]));""", spec)
    numbers = [float(t.replace(",", "")) for t in labels if re.fullmatch(r"[\d.,]+", t)]
    assert 300 in numbers and 100 in numbers and 0 not in numbers, labels  # steps 100..300 on the x axis
    assert max(n for n in numbers if n < 100) < 9  # loss labels: none up at the step-0 value
    legend = browser.execute_async_script("""
        const done = arguments[arguments.length - 1], el = document.createElement('div');
        document.body.appendChild(el);
        vegaEmbed(el, JSON.parse(arguments[0]), {renderer: 'svg', actions: false}).then(() => done(el.textContent));
        """, spec)
    assert "train_loss" in legend and "val_loss" in legend  # both curves in one chart
