"""Shared fixtures: the project root and a few KB of real text."""
from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HAMLET = ROOT / "data/raw/shakespeare-milton/shakespeare/hamlet_gut.txt"


@pytest.fixture(scope="session")
def project_root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def sample_text() -> str:
    """About 12 KB of Hamlet (whole lines), skipping the title page."""
    lines = HAMLET.read_text(encoding="utf-8").splitlines(keepends=True)
    text, size = [], 0
    for line in lines[40:]:
        text.append(line)
        size += len(line)
        if size >= 12_000:
            break
    return "".join(text)


@pytest.fixture(scope="session")
def endless_chat_model(sample_text):
    """Make a tokenizer with the chat tokens and a random tiny model that never ends an answer at temperature 0.

    endless_chat_model(folder, checkpoint_name, n_embd, block_size) -> (tokenizer, model), saved in folder.
    """
    import torch

    from stages.lib.model.checkpoint import save_checkpoint
    from stages.lib.model.gpt import GPT
    from stages.lib.params import ModelParams, TokenizerParams
    from stages.lib.tokens.tokenizer_adapter import train_tokenizer

    def make(folder: Path, checkpoint_name: str, n_embd: int, block_size: int):
        tok = train_tokenizer(iter(sample_text.split("\n\n")), folder / "tokenizer", "bpe", 400, 2,
                              TokenizerParams().special_tokens, True, 1337)
        torch.manual_seed(0)
        model = GPT(ModelParams(n_layer=2, n_head=2, n_embd=n_embd, block_size=block_size, tie_embeddings=False),
                    tok.vocab_size).eval()
        with torch.no_grad():
            for p in model.parameters():
                torch.nn.init.normal_(p, std=0.2)
            # The end tokens' logits are 0, below the largest of the others (which some random row always beats).
            model.lm_head.weight[[tok.eot_id, tok.special_id("<|end|>")]] = 0.0
        save_checkpoint(folder / checkpoint_name, model, tok.fingerprint, step=1, val_loss=1.0)
        return tok, model

    return make


@pytest.fixture(scope="session")
def headless_chromium():
    """Start Debian's chromium through chromedriver: headless_chromium(width, height) -> a selenium driver.

    Skips the test when chromium or chromium-driver is not installed. The caller quits the driver.
    """
    import shutil

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    def start(width: int, height: int):
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", f"--window-size={width},{height}"):
            options.add_argument(arg)
        return webdriver.Chrome(options=options, service=Service(driver))

    return start
