"""The server through the official openai client: a real uvicorn on a free localhost port, over a tiny model.

One server per module (in a thread, with an API key), built as python -m stages.serve builds it; the command
itself starts in a subprocess in the last tests. The tiny model's end tokens are never the most likely, so at
temperature 0 an answer runs to max_tokens, and answers can be compared with decoding.generate's.
"""
from __future__ import annotations

import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest
import torch
import uvicorn

from stages.lib.model.chat_session import fit_history
from stages.lib.model.decoding import Sampling, generate
from stages.lib.serving.app import Server, Settings, Uvicorn, build_app, last_messages
from stages.lib.tokens.chat import ChatFormat
from stages.serve import bind

ROOT = Path(__file__).resolve().parent.parent
KEY = "test-key"
NAME = "tiny"
BLOCK = 64
MAX_TOKENS = 3000  # the server's limit: long enough for a stream that outlives its client
GREEDY = Sampling(temperature=0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, endless_chat_model):
    """A tokenizer with the chat tokens and a random tiny model that never ends an answer at temperature 0."""
    folder = tmp_path_factory.mktemp("serve")
    tok, model = endless_chat_model(folder, "model.pt", n_embd=32, block_size=BLOCK)
    return folder, tok, model


class Running:
    """A uvicorn server in a thread, on a socket bound to a free port of 127.0.0.1."""

    def __init__(self, server: Server):
        self.server = server
        sock = bind("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.uvicorn = Uvicorn(uvicorn.Config(build_app(server), log_level="warning"), server)
        self.thread = threading.Thread(target=self.uvicorn.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.uvicorn.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.02)

    def stop(self) -> None:
        self.uvicorn.should_exit = True
        self.thread.join(timeout=30)
        assert not self.thread.is_alive()
        assert not self.server.batcher.thread.is_alive()  # the decode thread ends with the server


@pytest.fixture(scope="module")
def running(trained):
    _, tok, model = trained
    running = Running(Server(model, tok, Settings(model_name=NAME, api_key=KEY, max_tokens=MAX_TOKENS)))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(running):
    return openai.OpenAI(base_url=running.url + "/v1", api_key=KEY, max_retries=0, timeout=60)


@dataclass
class Answer:
    status: int
    body: bytes

    def json(self):
        return json.loads(self.body)


def call(url: str, method: str, path: str, body: str | list[bytes] | None = None, key: str | None = None) -> Answer:
    """One plain HTTP request (a list of byte strings is sent chunked, without a Content-Length)."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {key}"} if key else {})
    conn.request(method, path, body=body if not isinstance(body, list) else iter(body), headers=headers,
                 encode_chunked=isinstance(body, list))
    response = conn.getresponse()
    answer = Answer(response.status, response.read())
    conn.close()
    return answer


def health(running) -> dict:
    return call(running.url, "GET", "/health").json()


def chat(client, content: str, max_tokens: int = 20, **options) -> str:
    out = client.chat.completions.create(model=NAME, messages=[{"role": "user", "content": content}],
                                         max_tokens=max_tokens, temperature=0, **options)
    return out.choices[0].message.content


def streamed_chat(client, content: str, max_tokens: int = 20) -> str:
    stream = client.chat.completions.create(model=NAME, messages=[{"role": "user", "content": content}],
                                            max_tokens=max_tokens, temperature=0, stream=True)
    return "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)


# --------------------------------------------------------------------------- the endpoints

def test_models_and_health(client, running):
    assert [m.id for m in client.models.list()] == [NAME]
    assert client.models.retrieve(NAME).id == NAME
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4")
    assert health(running)["status"] == "ok"


def test_chat_answer_is_the_decoding_loops_greedy_answer(client, trained):
    _, tok, model = trained
    fmt = ChatFormat(tok)
    messages = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Who is Hamlet?"}]
    out = client.chat.completions.create(model=NAME, messages=messages, max_tokens=24, temperature=0)
    prompt = fmt.encode_prompt(messages)
    expected = generate(model, torch.tensor([prompt]), 24, GREEDY, decode=tok.decode)
    assert out.choices[0].message.content == expected.texts[0] and len(expected.texts[0]) > 10
    assert out.choices[0].message.role == "assistant" and out.choices[0].finish_reason == "length"
    assert (out.usage.prompt_tokens, out.usage.completion_tokens) == (len(prompt), 24)
    assert out.model == NAME and out.object == "chat.completion"


def test_a_streamed_chat_is_the_same_text_in_chunks(client):
    stream = client.chat.completions.create(model=NAME, messages=[{"role": "user", "content": "To be, or not"}],
                                            max_tokens=30, temperature=0, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    texts = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(texts) > 1  # it came in pieces
    assert "".join(texts) == chat(client, "To be, or not", max_tokens=30)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    assert chunks[-1].usage.completion_tokens == 30 and not chunks[-1].choices


def test_completions_plain_streamed_echoed_and_seeded(client, trained):
    _, tok, model = trained
    out = client.completions.create(model=NAME, prompt="HAMLET.", max_tokens=16, temperature=0)
    expected = generate(model, torch.tensor([tok.encode("HAMLET.")]), 16, GREEDY, decode=tok.decode).texts[0]
    assert out.choices[0].text == expected and out.object == "text_completion"
    stream = client.completions.create(model=NAME, prompt="HAMLET.", max_tokens=16, temperature=0, stream=True)
    assert "".join(c.choices[0].text for c in stream) == expected
    echoed = client.completions.create(model=NAME, prompt="HAMLET.", max_tokens=16, temperature=0, echo=True)
    assert echoed.choices[0].text == "HAMLET." + expected
    seeded = [client.completions.create(model=NAME, prompt="HAMLET.", max_tokens=16, temperature=1.0, seed=7, n=2)
              for _ in range(2)]
    first, second = ([c.text for c in s.choices] for s in seeded)
    assert first == second and first[0] != first[1]  # the seed reproduces; each choice samples on its own


def test_a_stop_string_cuts_the_text_and_stops(client, trained):
    free = client.completions.create(model=NAME, prompt="HAMLET.", max_tokens=24, temperature=0).choices[0].text
    stop = free[8:11]
    out = client.completions.create(model=NAME, prompt="HAMLET.", max_tokens=24, temperature=0, stop=[stop])
    assert out.choices[0].text == free[:free.index(stop)] and out.choices[0].finish_reason == "stop"
    assert out.usage.completion_tokens < 24


# --------------------------------------------------------------------------- concurrency

def test_16_concurrent_streams_give_the_answers_of_one_at_a_time(client, running, monkeypatch):
    # Prompts of different lengths, answers that run past the 64-token context (the windows move on)
    questions = [f"Question {i}: {'who is there? ' * (i % 4)}Denmark" for i in range(16)]
    alone = [streamed_chat(client, q, max_tokens=48) for q in questions]
    widths, batch = [], running.server.batcher.batch
    step = batch.step

    def counted_step():
        widths.append(len(batch.rows))
        return step()

    monkeypatch.setattr(batch, "step", counted_step)
    with ThreadPoolExecutor(16) as pool:
        together = list(pool.map(lambda q: streamed_chat(client, q, max_tokens=48), questions))
    assert together == alone
    assert len(set(alone)) == 16 and all(len(a) > 10 for a in alone)
    assert max(widths) >= 8  # decoded together, as rows of one batch


def test_a_closed_stream_stops_its_decoding(client, running):
    before = health(running)["tokens"]
    stream = client.chat.completions.create(model=NAME, messages=[{"role": "user", "content": "Speak on"}],
                                            max_tokens=MAX_TOKENS, temperature=0, stream=True)
    for i, _ in enumerate(stream):
        if i == 3:
            break
    stream.close()
    deadline = time.monotonic() + 10
    while health(running)["rows"]:
        assert time.monotonic() < deadline, "the row went on decoding after its client left"
        time.sleep(0.05)
    assert health(running)["tokens"] - before < MAX_TOKENS / 3


def test_a_client_that_gives_up_on_an_unstreamed_answer_stops_its_decoding(running):
    before = health(running)["tokens"]
    impatient = openai.OpenAI(base_url=running.url + "/v1", api_key=KEY, max_retries=0, timeout=0.3)
    with pytest.raises(openai.APITimeoutError):
        impatient.completions.create(model=NAME, prompt="Speak on", max_tokens=MAX_TOKENS, temperature=0)
    deadline = time.monotonic() + 10
    while health(running)["rows"]:
        assert time.monotonic() < deadline, "the row went on decoding after its client left"
        time.sleep(0.05)
    assert health(running)["tokens"] - before < MAX_TOKENS / 2


def test_a_full_queue_is_503_and_the_server_goes_on(trained):
    _, tok, model = trained
    running = Running(Server(model, tok, Settings(model_name=NAME, max_tokens=MAX_TOKENS, max_rows=1,
                                                  max_waiting=1)))
    try:
        client = openai.OpenAI(base_url=running.url + "/v1", api_key="unused", max_retries=0)
        long = client.completions.create(prompt="A", max_tokens=MAX_TOKENS, model=NAME, stream=True, temperature=0)
        next(iter(long))  # decoding: the one row is taken
        waiting = ThreadPoolExecutor(1).submit(client.completions.create, prompt="B", max_tokens=2, model=NAME)
        deadline = time.monotonic() + 10
        while health(running)["waiting"] == 0:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        with pytest.raises(openai.APIStatusError) as err:
            client.completions.create(prompt="C", max_tokens=2, model=NAME)
        assert err.value.status_code == 503 and err.value.body["code"] == "server_busy"
        long.close()
        assert len(waiting.result(timeout=30).choices[0].text) > 0  # served once the row was free
    finally:
        running.stop()


def test_stopping_the_server_ends_the_streams_in_flight_at_once(trained):
    _, tok, model = trained
    running = Running(Server(model, tok, Settings(model_name=NAME, max_tokens=MAX_TOKENS)))
    client = openai.OpenAI(base_url=running.url + "/v1", api_key="unused", max_retries=0)
    long = client.completions.create(prompt="A", max_tokens=MAX_TOKENS, model=NAME, stream=True, temperature=0)
    next(iter(long))
    start = time.monotonic()
    running.stop()
    assert time.monotonic() - start < 2  # not the graceful-shutdown timeout, nor the MAX_TOKENS stream
    with pytest.raises(openai.APIError, match="shutting down"):
        for _ in long:
            pass


# --------------------------------------------------------------------------- errors and the key

def post(running, path: str, body: str | list[bytes], key: str | None = KEY) -> Answer:
    return call(running.url, "POST", path, body, key)


def error_of(response: Answer) -> dict:
    body = response.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


def test_bad_requests_get_openai_errors_with_the_right_status(client, running):
    malformed = post(running, "/v1/chat/completions", '{"messages": [')
    assert malformed.status == 400 and "not valid JSON" in error_of(malformed)["message"]
    not_object = post(running, "/v1/completions", "[1, 2]")
    assert not_object.status == 400
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=NAME, messages=[{"role": "user", "content": 5}])
    assert err.value.body["param"].startswith("messages.0.content")
    with pytest.raises(openai.BadRequestError, match="temperature"):
        client.completions.create(model=NAME, prompt="x", temperature=-1)
    with pytest.raises(openai.BadRequestError, match="max_tokens"):
        client.completions.create(model=NAME, prompt="x", max_tokens=MAX_TOKENS + 1)
    with pytest.raises(openai.BadRequestError, match="role"):
        client.chat.completions.create(model=NAME, messages=[{"role": "tool", "content": "x"}])
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "hi"}])
    assert err.value.body["code"] == "model_not_found"
    unknown_route = call(running.url, "GET", "/v1/nothing", key=KEY)
    assert unknown_route.status == 404 and error_of(unknown_route)["type"] == "invalid_request_error"
    assert health(running)["status"] == "ok"


def test_context_too_long_is_400_and_long_chats_lose_their_oldest_turns(client, running):
    long_text = "To be, or not to be, that is the question. " * 20  # far over the 64-token context
    with pytest.raises(openai.BadRequestError) as err:
        client.completions.create(model=NAME, prompt=long_text, max_tokens=4)
    assert err.value.body["code"] == "context_length_exceeded"
    with pytest.raises(openai.BadRequestError) as err:
        chat(client, long_text)
    assert err.value.body["code"] == "context_length_exceeded"
    history = [{"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i}: Denmark is a prison"}
               for i in range(12)] + [{"role": "user", "content": "and now?"}]
    out = client.chat.completions.create(model=NAME, messages=history, max_tokens=4, temperature=0)
    assert out.usage.prompt_tokens <= BLOCK * 3 // 4
    start = time.monotonic()
    client.chat.completions.create(model=NAME, messages=history * 500, max_tokens=4, temperature=0)
    assert time.monotonic() - start < 5  # 6500 messages: one encoding of the last few, not one per dropped turn


def test_the_messages_kept_are_fit_historys(trained):
    fmt = ChatFormat(trained[1])
    gen = torch.Generator().manual_seed(0)
    for trial in range(30):
        lengths = torch.randint(0, 12, (int(torch.randint(1, 40, (1,), generator=gen)),), generator=gen).tolist()
        roles = ["user" if torch.rand(1, generator=gen) < 0.6 else "assistant" for _ in lengths]
        messages = [{"role": "system", "content": "Be brief."}] * (trial % 2) + [
            {"role": role, "content": "word " * n} for role, n in zip(roles, lengths)]
        for budget in (8, 20, 48):
            assert fit_history(last_messages(messages, budget), fmt, budget)[0] == fit_history(messages, fmt, budget)[0]


def test_a_body_over_the_limit_is_413(running):
    big = json.dumps({"prompt": "x" * (1 << 20), "max_tokens": 1})  # over the default limit, 1 MiB
    response = post(running, "/v1/completions", big)
    assert response.status == 413 and error_of(response)["code"] == "request_too_large"
    chunked = post(running, "/v1/completions", [big[:700_000].encode(), big[700_000:].encode()])
    assert chunked.status == 413  # no Content-Length: counted as it comes


def test_the_api_key_is_needed_everywhere_but_health_and_the_page(running):
    for key in (None, "wrong"):
        for path in ("/v1/models", "/v1/chat/completions", "/v1/completions"):
            response = call(running.url, "GET" if path == "/v1/models" else "POST", path, "{}", key)
            assert response.status == 401 and error_of(response)["code"] == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=running.url + "/v1", api_key="wrong", max_retries=0).models.list()
    assert call(running.url, "GET", "/health").status == 200
    page = call(running.url, "GET", "/")
    assert page.status == 200 and b"<html" in page.body.lower()  # static, no data: it asks for the key
    outside = call(running.url, "GET", "/static/../app.py")
    assert outside.status in (401, 404)  # nothing outside static/ is served


# --------------------------------------------------------------------------- the command

@pytest.mark.slow
def test_the_command_serves_on_localhost_and_reports_its_url(trained, tmp_path):
    folder = trained[0]
    env = {**os.environ, "SERVE_API_KEY": KEY}
    proc = subprocess.Popen([sys.executable, "-m", "stages.serve", "--checkpoint", str(folder / "model.pt"),
                             "--tokenizer", str(folder / "tokenizer"), "--port", "0"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("serve: model (") and "API key required" in line
        base = re.search(r" at (http://127\.0\.0\.1:\d+):", line).group(1)
        deadline = time.monotonic() + 60
        while True:
            try:
                assert call(base, "GET", "/health").json()["model"] == "model"
                break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        client = openai.OpenAI(base_url=base + "/v1", api_key=KEY, max_retries=0)
        completion = client.completions.create(model="model", prompt="HAMLET.", max_tokens=5, temperature=0)
        assert completion.usage.completion_tokens == 5  # (the model never ends at temperature 0)
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) in (0, -signal.SIGTERM)  # uvicorn shuts down, then re-raises the signal


@pytest.mark.slow
def test_no_checkpoint_is_one_line(tmp_path):
    result = subprocess.run([sys.executable, "-m", "stages.serve"], cwd=tmp_path, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: no checkpoint: neither artifacts/checkpoints/sft.pt nor artifacts/checkpoints/model.pt exists; "
        "run dvc repro first (or pass --checkpoint)"]
