"""Serving speed: tokens/s and time to first token at 1, 4 and 16 concurrent streams, against one stream through
the decoding loop itself (what python -m stages.generate runs), measured in one run; the server's memory.

It starts python -m stages.serve on a free port with the given checkpoint. For each concurrency it first
times one generation in this process with decoding.generate (no HTTP: the loop alone; right before the level,
so both see the machine in the same state), then that many clients stream completions (each a distinct
prompt, --new-tokens each, sampled with a seed) until --requests are done; a client's time to first token runs
from sending the request to the first text. Aggregate tokens/s is all streamed tokens over the level's wall
time. The server's resident memory is read at idle (after a warm-up as wide as the widest level), sampled
every 20 ms under load (peak), and read again after the load.

    python bench/serve.py                                           # artifacts/checkpoints/sft.pt or model.pt
    python bench/serve.py --checkpoint /tmp/fresh/artifacts/checkpoints/sft.pt \\
                          --tokenizer /tmp/fresh/artifacts/tokenizer --streams 1 4 16 --requests 32
"""
from __future__ import annotations

import argparse
import http.client
import json
import re
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from stages.lib.model.checkpoint import load_checkpoint  # noqa: E402
from stages.lib.model.decoding import Sampling, generate  # noqa: E402
from stages.lib.tokens.tokenizer_adapter import load_tokenizer  # noqa: E402

PROMPTS = [
    "ROMEO:", "HAMLET.\nTo be, or not to be,", "The king", "Enter", "My lord, I", "O, what a", "First Citizen:",
    "Of man's first disobedience, and the fruit", "Now is the winter of our discontent", "JULIET:", "Good night,",
    "Friends, Romans, countrymen,", "What light", "The quality of mercy", "All the world's a stage,", "Thou",
]
TEMPERATURE = 0.8


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    command = [sys.executable, "-m", "stages.serve", "--port", "0", "--log-level", "warning", "--threads",
               str(args.threads), "--max-batch", str(max(args.streams)), "--max-tokens", str(args.new_tokens)]
    for flag in ("checkpoint", "tokenizer"):
        if getattr(args, flag):
            command += [f"--{flag}", getattr(args, flag)]
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    found = re.search(r" at http://([\d.]+):(\d+):", line)
    if found is None:
        proc.kill()
        sys.exit(f"the server did not start: {line.strip()}")
    host, port = found.groups()
    deadline = time.monotonic() + 120
    while True:  # the line comes before uvicorn listens: wait for /health
        try:
            get(host, port, "/health")
            return proc, f"{host}:{port}"
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                sys.exit("the server did not answer /health")
            time.sleep(0.1)


def get(host: str, port: str, path: str) -> dict:
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("GET", path)
    return json.loads(conn.getresponse().read())


def one_stream(address: str, prompt: str, new_tokens: int, seed: int) -> tuple[float, int]:
    """Stream one completion: seconds to the first text, and the tokens generated (the usage chunk's count)."""
    host, port = address.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=300)
    body = {"prompt": prompt, "max_tokens": new_tokens, "temperature": TEMPERATURE, "seed": seed, "stream": True,
            "stream_options": {"include_usage": True}}
    start = time.perf_counter()
    conn.request("POST", "/v1/completions", json.dumps(body), {"Content-Type": "application/json"})
    response = conn.getresponse()
    first, tokens = None, 0
    while line := response.readline():
        if not line.startswith(b"data: {"):
            continue
        chunk = json.loads(line[6:])
        if first is None and chunk["choices"] and chunk["choices"][0]["text"]:
            first = time.perf_counter() - start
        if chunk.get("usage"):
            tokens = chunk["usage"]["completion_tokens"]
    conn.close()
    return (first if first is not None else time.perf_counter() - start), tokens


def load_level(address: str, streams: int, requests: int, new_tokens: int) -> tuple[float, list[float], int]:
    """`requests` streamed completions by `streams` concurrent clients: tokens/s, times to first token, tokens."""
    jobs = [(PROMPTS[i % len(PROMPTS)], new_tokens, i) for i in range(requests)]
    start = time.perf_counter()
    with ThreadPoolExecutor(streams) as pool:
        results = list(pool.map(lambda job: one_stream(address, *job), jobs))
    elapsed = time.perf_counter() - start
    tokens = sum(n for _, n in results)
    return tokens / elapsed, [t for t, _ in results], tokens


class PeakRss:
    """The peak resident memory of a process, sampled every 20 ms while running."""

    def __init__(self, pid: int):
        self.process, self.peak, self.running = psutil.Process(pid), 0, True
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()

    def sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.02)

    def stop(self) -> int:
        self.running = False
        self.thread.join()
        return self.peak


class Baseline:
    """One stream through decoding.generate in this process (python -m stages.generate's loop, no HTTP)."""

    def __init__(self, args: argparse.Namespace):
        checkpoint = args.checkpoint or next(p for p in ("artifacts/checkpoints/sft.pt",
                                                         "artifacts/checkpoints/model.pt") if (ROOT / p).exists())
        self.model, _ = load_checkpoint(checkpoint if Path(checkpoint).is_absolute() else ROOT / checkpoint)
        self.tok = load_tokenizer(args.tokenizer or ROOT / "artifacts/tokenizer")
        self.new_tokens = args.new_tokens
        generate(self.model, torch.tensor([self.tok.encode(PROMPTS[0])]), 8, Sampling(temperature=TEMPERATURE))

    def measure(self) -> tuple[float, float]:
        """Tokens/s and seconds to the first token, the medians of three generations."""
        return baseline(self.model, self.tok, self.new_tokens)


def baseline(model, tok, new_tokens: int) -> tuple[float, float]:
    prompt = torch.tensor([tok.encode(PROMPTS[0])])
    sampling = Sampling(temperature=TEMPERATURE)
    rates, firsts = [], []
    for seed in range(3):
        steps: list[float] = []
        start = time.perf_counter()
        out = generate(model, prompt, new_tokens, sampling, stop_token=tok.eot_id,
                       generator=torch.Generator().manual_seed(seed), on_step=lambda _, t=steps: t.append(
                           time.perf_counter()))
        rates.append(len(out.ids[0]) / (time.perf_counter() - start))
        firsts.append(steps[0] - start)
    return statistics.median(rates), statistics.median(firsts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", default=None, help="default: the server's (sft.pt, else model.pt)")
    parser.add_argument("--tokenizer", default=None, help="default: artifacts/tokenizer")
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--requests", type=int, default=32, help="streamed completions per concurrency level")
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=max(1, torch.get_num_threads() - 1),
                        help="torch threads of the model, in the server and in the in-process stream alike "
                             "(default: the server's, all cores but one)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    base = Baseline(args)
    print(f"{psutil.cpu_count()} CPUs; the model on {args.threads} thread(s) in the server and in process; "
          f"{args.new_tokens} new tokens per request, temperature {TEMPERATURE}")
    proc, address = start_server(args)
    try:
        server = psutil.Process(proc.pid)
        load_level(address, max(args.streams), max(args.streams), 8)  # warm-up through HTTP, as wide as the load
        time.sleep(0.5)
        idle = server.memory_info().rss
        peak = PeakRss(proc.pid)
        for streams in args.streams:
            base_rate, base_first = base.measure()
            print(f"one stream in process (decoding.generate):  {base_rate:7.1f} tokens/s, first token "
                  f"{base_first * 1e3:6.1f} ms")
            rate, firsts, tokens = load_level(address, streams, max(args.requests, streams), args.new_tokens)
            p50, p95 = percentile(firsts, 0.5) * 1e3, percentile(firsts, 0.95) * 1e3
            print(f"server, {streams:>2} concurrent streams:    {rate:7.1f} tokens/s aggregate "
                  f"({rate / base_rate:4.1f}x the stream above), first token p50 {p50:6.1f} ms, p95 {p95:6.1f} ms "
                  f"({len(firsts)} requests, {tokens} tokens)")
        under_load = peak.stop()
        time.sleep(2)
        after = server.memory_info().rss
        health = get(*address.split(":"), "/health")
        print(f"server memory (RSS): idle {idle / 2**20:.0f} MB, peak under load {under_load / 2**20:.0f} MB, "
              f"after {after / 2**20:.0f} MB; rows still decoding after: {health['rows']}")
    finally:
        proc.terminate()
        proc.wait(timeout=30)


if __name__ == "__main__":
    main()
