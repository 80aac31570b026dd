"""serve: an OpenAI-compatible HTTP server and a chat page over the trained model.

    python -m stages.serve                                    # http://127.0.0.1:8000: the page at /, the API at /v1
    python -m stages.serve --port 8080 --checkpoint artifacts/checkpoints/model.pt
    SERVE_API_KEY=secret python -m stages.serve --host 0.0.0.0  # reachable from other machines: with a key

It serves the fine-tuned model (artifacts/checkpoints/sft.pt) when there is one, else the pretrained one
(model.pt), with the tokenizer in artifacts/tokenizer. Routes, errors and the context rules are in
stages/lib/serving/app.py; concurrent requests are decoded together as rows of one batch (--max-batch rows,
--queue more waiting, the next one 503) by stages/lib/serving/batcher.py, over the decoding loop generate uses.
It binds 127.0.0.1 unless --host says otherwise. With an API key (--api-key, or SERVE_API_KEY) every route but
/health needs `Authorization: Bearer KEY`, except the page's static files (the page asks for the key). --port 0
takes a free port; the first line printed names it.
"""
from __future__ import annotations

import argparse
import logging
import os
import socket
from collections.abc import Sequence
from pathlib import Path

import torch

from stages.lib.errors import UserError, run_stage
from stages.lib.model.checkpoint import check_tokenizer, load_checkpoint
from stages.lib.runtime import resolve_device
from stages.lib.tokens.tokenizer_adapter import load_tokenizer

CHECKPOINTS = ("artifacts/checkpoints/sft.pt", "artifacts/checkpoints/model.pt")  # the first that exists
KEY_VARIABLE = "SERVE_API_KEY"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Serve the model over an OpenAI-compatible HTTP API, with a "
                                                 "chat page at /.")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default: this machine only; 0.0.0.0: every interface)")
    parser.add_argument("--port", type=int, default=8000, help="0: a free port")
    parser.add_argument("--checkpoint", default=None, help=f"default: {CHECKPOINTS[0]}, else {CHECKPOINTS[1]}")
    parser.add_argument("--tokenizer", default="artifacts/tokenizer",
                        help="tokenizer folder the model was trained with")
    parser.add_argument("--model-name", default=None,
                        help="the model's id in the API (default: the checkpoint's file name without .pt)")
    parser.add_argument("--api-key", default=os.environ.get(KEY_VARIABLE) or None,
                        help=f"require `Authorization: Bearer KEY` on the API, /health and the page aside "
                             f"(default: ${KEY_VARIABLE})")
    parser.add_argument("--max-batch", type=int, default=16, help="rows decoded together (requests x n)")
    parser.add_argument("--queue", type=int, default=64, help="requests that may wait for a row; more get 503")
    parser.add_argument("--max-tokens", type=int, default=512,
                        help="new tokens per choice: the default, and the most a request may ask for")
    parser.add_argument("--max-body-bytes", type=int, default=1 << 20, help="larger request bodies get 413")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads for the model (0: all cores but one, which serves HTTP)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                        help="uvicorn's log: info shows each request")
    return parser.parse_args(argv)


def check_args(args: argparse.Namespace) -> None:
    for flag, value in (("--max-batch", args.max_batch), ("--max-tokens", args.max_tokens),
                        ("--max-body-bytes", args.max_body_bytes)):
        if value < 1:
            raise UserError(f"{flag}={value} must be >= 1")
    if args.threads < 0:
        raise UserError(f"--threads={args.threads} must be >= 0 (0: all cores but one)")
    if args.queue < 0:
        raise UserError(f"--queue={args.queue} must be >= 0")
    if not 0 <= args.port < 65536:
        raise UserError(f"--port={args.port} must be in 0 .. 65535")
    if args.api_key is not None and not args.api_key.strip():
        raise UserError(f"--api-key (or {KEY_VARIABLE}) is empty: give a key, or leave it out for none")


def find_checkpoint(given: str | None) -> str:
    if given is not None:
        return given
    for path in CHECKPOINTS:
        if Path(path).exists():
            return path
    raise UserError(f"no checkpoint: neither {' nor '.join(CHECKPOINTS)} exists; run dvc repro first "
                    f"(or pass --checkpoint)")


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so a taken port is one clear line (and --port 0 can be reported)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        raise UserError(f"--host {host} is not an address of this machine ({err.strerror})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as err:
        sock.close()
        raise UserError(f"cannot listen on {host}:{port} ({err.strerror}): pass another --port or --host") from None
    sock.listen(2048)
    return sock


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    check_args(args)
    checkpoint = find_checkpoint(args.checkpoint)
    device = resolve_device(args.device, "--device")
    # On a few cores, the model's threads and the HTTP thread fighting for all of them is slower than
    # leaving one core to HTTP (2 cores: 16 streams 1.3x faster with one model thread than two).
    torch.set_num_threads(args.threads or max(1, torch.get_num_threads() - 1))
    model, meta = load_checkpoint(checkpoint, device)
    tok = load_tokenizer(args.tokenizer)
    check_tokenizer(meta, tok.fingerprint, args.tokenizer)

    # Imported here: the server stack is needed once the model is known to load.
    import uvicorn

    from stages.lib.serving.app import Server, Settings, Uvicorn, build_app

    name = args.model_name or Path(checkpoint).stem
    settings = Settings(model_name=name, api_key=args.api_key, max_tokens=args.max_tokens, max_rows=args.max_batch,
                        max_waiting=args.queue, max_body_bytes=args.max_body_bytes)
    server = Server(model, tok, settings)
    app = build_app(server)
    sock = bind(args.host, args.port)
    host, port = sock.getsockname()[:2]
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
    print(f"serve: {name} ({checkpoint}, {model.num_params() / 1e6:.2f}M parameters, {device.type}) at {url}: the chat "
          f"page at /, the API at {url}/v1{'; API key required' if args.api_key else ''}", flush=True)
    logging.basicConfig(level=args.log_level.upper(), format="%(levelname)s: %(message)s")
    config = uvicorn.Config(app, log_level=args.log_level, timeout_graceful_shutdown=3)
    Uvicorn(config, server).run(sockets=[sock])


if __name__ == "__main__":
    run_stage(main)
