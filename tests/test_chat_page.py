"""The chat page (GET /) in a real headless browser against a real python -m stages.serve.

Debian's chromium and chromium-driver, driven by selenium; .ci/run installs them where chromium is missing.
The server runs a tiny random model whose end tokens can never be the most likely one, so at temperature 0
an answer runs until max_tokens (or Stop): long enough to watch it grow.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

pytestmark = pytest.mark.slow  # a browser and a server start: seconds each

ROOT = Path(__file__).resolve().parent.parent
KEY = "page-test-key"

# Installed in the page after it loads: records each request the page sends, and the length of the last
# answer at each change of the conversation (to see it grow while it streams).
RECORDER = """
window.sent = [];
const original = window.fetch;
window.fetch = (url, init) => {
  window.sent.push({url: String(url), headers: (init && init.headers) || {}, body: init && init.body});
  return original(url, init);
};
window.lengths = [];
new MutationObserver(() => {
  const answers = document.querySelectorAll('.msg.assistant .content');
  if (answers.length) window.lengths.push(answers[answers.length - 1].textContent.length);
}).observe(document.getElementById('log'), {subtree: true, childList: true, characterData: true});
"""


# --------------------------------------------------------------------------- the server and the browser

@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, endless_chat_model):
    """A tokenizer with the chat tokens and a random tiny model that never ends an answer at temperature 0."""
    folder = tmp_path_factory.mktemp("chat_page")
    endless_chat_model(folder, "sft.pt", n_embd=64, block_size=64)
    return folder


@pytest.fixture(scope="module")
def server(model_dir):
    """python -m stages.serve with an API key, on a free localhost port (--port 0); its base URL."""
    log_path = model_dir / "server.log"
    log = log_path.open("w")
    proc = subprocess.Popen([sys.executable, "-m", "stages.serve", "--checkpoint", str(model_dir / "sft.pt"),
                             "--tokenizer", str(model_dir / "tokenizer"), "--port", "0", "--api-key", KEY,
                             "--max-tokens", "5000", "--log-level", "warning"],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while True:  # the first line names the port it took; /health answers once the app has started
            if proc.poll() is not None:
                pytest.fail(f"the server exited ({proc.returncode}):\n{log_path.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no /health after 90 s:\n{log_path.read_text()}")
            time.sleep(0.2)
            found = re.search(r" at (http://127\.0\.0\.1:\d+)", log_path.read_text())
            if found:
                try:
                    health(found[1])
                    break
                except OSError:
                    pass
        yield found[1]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="module")
def browser(headless_chromium):
    b = headless_chromium(1000, 800)
    yield b
    b.quit()


@pytest.fixture
def page(browser, server):
    """The chat page, freshly loaded, with the recorder installed, the API key filled in and temperature 0."""
    browser.get(server + "/")
    browser.execute_script(RECORDER)
    browser.execute_script("document.getElementById('settings').open = true")  # a 401 on load opens them too
    fill(browser, "api-key", KEY)
    fill(browser, "temperature", "0")
    return browser


def fill(b, element_id: str, text: str) -> None:
    field = b.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(text)


def js(b, script: str):
    return b.execute_script("return " + script)


def answers(b) -> list[str]:
    return js(b, "[...document.querySelectorAll('.msg.assistant .content')].map(e => e.textContent)")


def streaming(b) -> bool:
    return b.find_element(By.ID, "stop").is_enabled()


def wait_idle(b, timeout: float = 60) -> None:
    WebDriverWait(b, timeout, poll_frequency=0.05).until(lambda b: not streaming(b))


def sent_chats(b) -> list[dict]:
    """The requests the page sent to /v1/chat/completions: their headers and JSON bodies."""
    return [{"headers": r["headers"], "body": json.loads(r["body"])}
            for r in js(b, "window.sent") if r["url"].endswith("/v1/chat/completions")]


def health(server: str) -> dict:
    with urllib.request.urlopen(server + "/health", timeout=10) as response:
        return json.load(response)


def complete(server: str, body: dict, key: str = KEY) -> dict:
    """The server's answer to a request, without streaming (the reference for what the page shows)."""
    request = urllib.request.Request(server + "/v1/chat/completions", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.load(response)
    except urllib.error.HTTPError as err:
        return json.load(err)


# --------------------------------------------------------------------------- the page

def test_enter_streams_an_answer_and_each_turn_sends_the_conversation(page, server):
    b = page
    fill(b, "system", "Answer briefly.")
    fill(b, "max-tokens", "60")
    prompt = b.find_element(By.ID, "prompt")
    prompt.send_keys("Who is Hamlet?")
    ActionChains(b).key_down(Keys.SHIFT).send_keys(Keys.ENTER).key_up(Keys.SHIFT).perform()  # a new line
    prompt.send_keys("Say it in one line.", Keys.ENTER)  # Enter sends
    assert streaming(b)
    wait_idle(b)

    first = "Who is Hamlet?\nSay it in one line."
    assert js(b, "document.querySelector('.msg.user .content').textContent") == first
    [request] = sent_chats(b)
    assert request["headers"]["Authorization"] == f"Bearer {KEY}"
    body = request["body"]
    assert body["stream"] is True and body["temperature"] == 0 and body["max_tokens"] == 60
    assert body["messages"] == [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": first}]

    # The answer grew while it streamed, and is the server's answer to the same request, whole.
    [answer] = answers(b)
    grown = sorted(set(js(b, "window.lengths")))
    assert len(grown) >= 3 and grown[-1] == len(answer), grown
    reference = complete(server, {**body, "stream": False})["choices"][0]
    assert answer == reference["message"]["content"] and reference["finish_reason"] == "length"
    assert "cut at max tokens" in b.find_element(By.CSS_SELECTOR, ".msg.assistant").text
    assert prompt.get_attribute("value") == "" and b.switch_to.active_element == prompt

    # The second turn sends the whole conversation; markup in a message is shown as text.
    prompt.send_keys("<b>And</b> Ophelia?", Keys.ENTER)
    wait_idle(b)
    second = sent_chats(b)[-1]["body"]["messages"]
    assert second == [*body["messages"], {"role": "assistant", "content": answer},
                      {"role": "user", "content": "<b>And</b> Ophelia?"}]
    assert len(answers(b)) == 2 and js(b, "document.querySelectorAll('#log b').length") == 0

    b.find_element(By.ID, "new-chat").click()
    assert answers(b) == []
    prompt.send_keys("Hello", Keys.ENTER)
    wait_idle(b)
    assert sent_chats(b)[-1]["body"]["messages"][1:] == [{"role": "user", "content": "Hello"}]


def test_stop_ends_a_long_answer_and_keeps_what_came(page, server):
    b = page
    fill(b, "max-tokens", "5000")
    b.find_element(By.ID, "prompt").send_keys("Tell me everything.", Keys.ENTER)
    WebDriverWait(b, 30, poll_frequency=0.05).until(lambda b: len(answers(b)[0]) > 0)
    b.find_element(By.ID, "stop").click()
    wait_idle(b, timeout=5)
    stopped = answers(b)[0]
    time.sleep(0.5)
    assert answers(b)[0] == stopped != ""  # nothing more arrives
    assert "stopped" in b.find_element(By.CSS_SELECTOR, ".msg.assistant").text
    # The page closed the stream, so the server took its row out of the batch.
    WebDriverWait(b, 5, poll_frequency=0.05).until(lambda _: health(server)["rows"] == 0)
    # What came is the start of the whole greedy answer (a token is at least one byte, a character at most 4).
    full = complete(server, {**sent_chats(b)[0]["body"], "stream": False, "max_tokens": 4 * len(stopped) + 16})
    assert full["choices"][0]["message"]["content"].startswith(stopped)

    fill(b, "max-tokens", "10")
    b.find_element(By.ID, "prompt").send_keys("Go on.", Keys.ENTER)  # the stopped answer is in the history
    wait_idle(b)
    assert sent_chats(b)[-1]["body"]["messages"][-2] == {"role": "assistant", "content": stopped}


def test_a_wrong_api_key_shows_the_servers_error_and_the_message_can_be_sent_again(page, server):
    b = page
    error = b.find_element(By.ID, "error")
    assert not error.is_displayed()  # the model name asked for on load without the key fails quietly
    fill(b, "api-key", "wrong")
    fill(b, "max-tokens", "10")
    b.find_element(By.ID, "prompt").send_keys("Hello", Keys.ENTER)
    WebDriverWait(b, 10).until(lambda b: error.is_displayed())
    expected = complete(server, {"messages": [{"role": "user", "content": "Hello"}]}, key="wrong")
    assert error.text.splitlines() == [expected["error"]["message"], "Fill in the API key under Settings."]
    assert answers(b) == [] and b.find_element(By.ID, "prompt").get_attribute("value") == "Hello"

    fill(b, "api-key", KEY)
    b.find_element(By.ID, "prompt").send_keys(Keys.ENTER)
    wait_idle(b)
    assert not error.is_displayed() and len(answers(b)) == 1 and answers(b)[0] != ""
