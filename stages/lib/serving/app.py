"""The routes: OpenAI-style chat completions, completions and models, a health check, and the chat page.

    POST /v1/chat/completions   messages in the chat format (stages/lib/tokens/chat.py), streamed or not
    POST /v1/completions        plain prompts, streamed or not
    GET  /v1/models             the one model served (and GET /v1/models/{id})
    GET  /health                {"status": "ok", ...}
    GET  /                      the chat page, static/index.html; other files of static/ under /static/

With an API key, every route but /health and the page needs `Authorization: Bearer KEY`. The page is the
shipped static files, which hold no data: it loads without the key and sends the key you type in it.

Every request becomes rows of the batcher's one decoding batch (batcher.py). Streams are server-sent events,
`data: {chunk}` per batch of new text and `data: [DONE]` at the end; a client that disconnects cancels its
rows. Errors are OpenAI's body with the matching status (schema.ApiError); anything unexpected is a 500 with
that body, and the server goes on.

Context: a completion prompt may hold up to model.block_size tokens, a chat prompt up to the three quarters of
it that the chat command also keeps (the rest is room for the answer). A chat whose history is longer loses its
oldest turns (the system message stays), as in `python -m stages.generate --chat`; a prompt that is still too
long (a completion prompt, or the last chat message alone) is a 400 with code context_length_exceeded. Past the
context, generation goes on as in generate: the window moves on (decoding.py).
"""
from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from stages.lib.model.chat_session import fit_history
from stages.lib.model.decoding import KEEP_FRACTION, Row, cut_at_stop
from stages.lib.model.gpt import GPT
from stages.lib.model.text_stream import TextStream
from stages.lib.serving.batcher import ERROR, SHUTDOWN, Batcher, Busy, Job
from stages.lib.serving.schema import ApiError, ChatRequest, CompletionRequest, SamplingRequest, parse
from stages.lib.tokens.chat import ChatFormat, has_chat_tokens
from stages.lib.tokens.tokenizer_adapter import Tokenizer

STATIC = Path(__file__).resolve().parent / "static"
FINISH = {"stop_token": "stop", "stop_string": "stop", "length": "length"}  # ours -> OpenAI's finish_reason

log = logging.getLogger("stages.serve")


@dataclass(frozen=True)
class Settings:
    """How the server answers (python -m stages.serve's flags)."""
    model_name: str
    api_key: str | None = None  # None: no key needed
    max_tokens: int = 512  # new tokens per choice: the default, and the most a request may ask for
    max_rows: int = 16  # rows decoded together (requests x n)
    max_waiting: int = 64  # requests waiting for a place; more are answered 503
    max_body_bytes: int = 1 << 20


class Server:
    """The state the routes share: the model, its tokenizer and chat format, and the batcher."""

    def __init__(self, model: GPT, tok: Tokenizer, settings: Settings):
        self.model, self.tok, self.settings = model, tok, settings
        self.block_size = model.cfg.block_size
        self.chat_format = ChatFormat(tok) if has_chat_tokens(tok) else None
        self.batcher = Batcher(model, tok.decode, settings.max_rows, settings.max_waiting)
        self.created = int(time.time())

    # ------------------------------------------------------------------ checks shared by the endpoints

    def check_model(self, name: str | None) -> None:
        if name is not None and name != self.settings.model_name:
            raise ApiError(404, f"the model `{name}` does not exist: this server serves "
                                f"`{self.settings.model_name}`", param="model", code="model_not_found")

    def max_new_tokens(self, asked: int | None) -> int:
        limit = self.settings.max_tokens
        if asked is None:
            return limit
        if not 1 <= asked <= limit:
            raise ApiError(400, f"max_tokens={asked} must be in 1 .. {limit} (this server's --max-tokens)",
                           param="max_tokens")
        return asked

    def rows(self, req: SamplingRequest, prompts: list[list[int]], max_tokens: int, stop_tokens: set[int]) -> list[Row]:
        """n rows per prompt, each with its own generator: seed + its index, so a seeded request gives the
        same text whatever shares the batch."""
        count = len(prompts) * req.n
        if req.n < 1:
            raise ApiError(400, f"n={req.n} must be >= 1", param="n")
        if count > self.settings.max_rows:
            raise ApiError(400, f"n={req.n} with {len(prompts)} prompt(s) asks for {count} choices: this server "
                                f"decodes at most {self.settings.max_rows} at once (--max-batch)", param="n")
        sampling, stops = req.sampling(), req.stop_strings()
        seed = secrets.randbits(63) if req.seed is None else req.seed
        rows = []
        for prompt in prompts:
            for _ in range(req.n):
                generator = None
                if sampling.temperature > 0:
                    generator = torch.Generator(self.model.wte.weight.device).manual_seed((seed + len(rows)) % 2 ** 64)
                rows.append(Row(prompt, max_tokens, sampling, generator, stop_tokens, stops))
        return rows

    def submit(self, rows: list[Row]) -> Job:
        job = Job(rows, asyncio.get_running_loop())
        try:
            self.batcher.submit(job)
        except Busy:
            raise ApiError(503, f"the server is busy: {self.settings.max_waiting} requests are already waiting "
                                f"(--queue); retry later", type="server_error", code="server_busy") from None
        return job

    # ------------------------------------------------------------------ endpoints

    async def chat_completions(self, request: Request) -> Response:
        req: ChatRequest = parse(ChatRequest, await read_body(request, self.settings.max_body_bytes))
        self.check_model(req.model)
        if self.chat_format is None:
            raise ApiError(400, "this model's tokenizer has no chat tokens: use /v1/completions", param="messages")
        fmt = self.chat_format
        budget = max(1, int(self.block_size * KEEP_FRACTION))  # as the chat command: room left for the answer
        history, _ = fit_history(last_messages(req.conversation(), budget), fmt, budget)
        prompt = fmt.encode_prompt(history)
        if len(prompt) > budget:
            raise ApiError(400, f"the last message is {len(prompt)} tokens with the chat template, over the {budget} "
                                f"that the model's {self.block_size}-token context leaves for a prompt",
                           param="messages", code="context_length_exceeded")
        asked = req.max_tokens if req.max_completion_tokens is None else req.max_completion_tokens
        max_tokens = self.max_new_tokens(asked)
        job = self.submit(self.rows(req, [prompt], max_tokens, {fmt.end_id, fmt.eot_id}))
        reply = Reply(self, job, "chatcmpl", req, prompt_tokens=len(prompt))
        if req.stream:
            return EventStream(reply.chat_chunks(), on_close=lambda: self.batcher.cancel(job))
        await until_done_or_gone(reply.collect(), request, lambda: self.batcher.cancel(job))
        return JSONResponse(reply.chat_completion())

    async def completions(self, request: Request) -> Response:
        req: CompletionRequest = parse(CompletionRequest, await read_body(request, self.settings.max_body_bytes))
        self.check_model(req.model)
        prompts = [self.tok.encode(p) or [self.tok.eot_id] for p in req.prompts()]  # empty: a new document
        for i, ids in enumerate(prompts):
            if len(ids) > self.block_size:
                raise ApiError(400, f"prompt{f'[{i}]' if len(prompts) > 1 else ''} is {len(ids)} tokens, over the "
                                    f"model's {self.block_size}-token context", param="prompt",
                               code="context_length_exceeded")
        max_tokens = self.max_new_tokens(req.max_tokens)
        job = self.submit(self.rows(req, prompts, max_tokens, {self.tok.eot_id}))
        echoed = [self.tok.decode(ids) if req.echo else "" for ids in prompts for _ in range(req.n)]
        reply = Reply(self, job, "cmpl", req, prompt_tokens=sum(map(len, prompts)), prefixes=echoed)
        if req.stream:
            return EventStream(reply.completion_chunks(), on_close=lambda: self.batcher.cancel(job))
        await until_done_or_gone(reply.collect(), request, lambda: self.batcher.cancel(job))
        return JSONResponse(reply.completion())

    async def list_models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [self.model_card()]})

    async def get_model(self, request: Request) -> Response:
        self.check_model(request.path_params["model"])
        return JSONResponse(self.model_card())

    def model_card(self) -> dict:
        return {"id": self.settings.model_name, "object": "model", "created": self.created, "owned_by": "stages.serve",
                "context_length": self.block_size}

    async def health(self, request: Request) -> Response:
        return JSONResponse({"status": "ok", "model": self.settings.model_name, **self.batcher.load()})

    async def page(self, request: Request) -> Response:
        index = STATIC / "index.html"
        if not index.is_file():
            raise ApiError(404, "the chat page is not installed (stages/lib/serving/static/index.html)")
        return FileResponse(index)


def last_messages(messages: list[dict], budget: int) -> list[dict]:
    """The messages fit_history could keep within `budget` tokens: a system message first, then at most the last
    budget // 2 + 1 others (each costs at least its role token and <|end|>, so more never fit, and fit_history
    cuts before the first whole turn of what is left). A long chat costs one encoding, not one per dropped turn."""
    system = messages[:1] if messages and messages[0]["role"] == "system" else []
    rest = messages[len(system):]
    return system + rest[-(budget // 2 + 1):]


class Reply:
    """One request's answer as its rows' tokens arrive: each choice's text (shown as TextStream shows it: no
    partial character, nothing a stop string may still claim), and the response bodies and stream chunks."""

    def __init__(self, server: Server, job: Job, kind: str, req: SamplingRequest, prompt_tokens: int,
                 prefixes: list[str] | None = None):
        self.server, self.job, self.req, self.prompt_tokens = server, job, req, prompt_tokens
        self.id, self.created = f"{kind}-{uuid.uuid4().hex}", int(time.time())
        self.prefixes = prefixes or [""] * len(job.rows)
        self.shown = [Shown() for _ in job.rows]
        self.streams = [TextStream(server.tok.decode, row.stop_strings, shown, None)
                        for row, shown in zip(job.rows, self.shown)]
        self.finish: list[str | None] = [None] * len(job.rows)

    async def updates(self) -> AsyncIterator[list[tuple[int, str, str | None]]]:
        """Per batch of arrived tokens: (choice, new text, finish_reason or None) for each choice that moved."""
        left = len(self.job.rows)
        while left:
            events = [await self.job.events.get()]
            while not self.job.events.empty():  # everything that arrived since: one chunk, not one per token
                events.append(self.job.events.get_nowait())
            moved: dict[int, str | None] = {}
            for i, token, finish in events:
                if finish == ERROR:
                    raise ApiError(500, "decoding failed on the server (its log says why)", type="server_error")
                if finish == SHUTDOWN:
                    raise ApiError(503, "the server is shutting down", type="server_error", code="shutting_down")
                row, stream = self.job.rows[i], self.streams[i]
                if token not in row.stop_tokens:
                    stream.add(token)
                if finish is not None:
                    stream.finish(cut_at_stop(self.server.tok.decode(stream.ids), row.stop_strings)[0])
                    self.finish[i] = FINISH[finish]
                    left -= 1
                moved[i] = self.finish[i]
            update = [(i, self.shown[i].take(), finish) for i, finish in moved.items()]
            update = [(i, text, finish) for i, text, finish in update if text or finish]
            if update:  # text held back (a partial character, a possible stop string) waits for the next tokens
                yield update

    async def collect(self) -> None:
        async for _ in self.updates():
            pass

    def text(self, i: int) -> str:
        return self.prefixes[i] + self.shown[i].text

    def usage(self) -> dict:
        completion = sum(len(row.new_ids) for row in self.job.rows)
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": completion,
                "total_tokens": self.prompt_tokens + completion}

    def head(self, object: str) -> dict:
        return {"id": self.id, "object": object, "created": self.created, "model": self.server.settings.model_name}

    def chat_completion(self) -> dict:
        choices = [{"index": i, "message": {"role": "assistant", "content": self.text(i)}, "logprobs": None,
                    "finish_reason": self.finish[i]} for i in range(len(self.job.rows))]
        return {**self.head("chat.completion"), "choices": choices, "usage": self.usage()}

    def completion(self) -> dict:
        choices = [{"index": i, "text": self.text(i), "logprobs": None, "finish_reason": self.finish[i]}
                   for i in range(len(self.job.rows))]
        return {**self.head("text_completion"), "choices": choices, "usage": self.usage()}

    def chat_chunks(self) -> AsyncIterator[str]:
        role = [{"index": i, "delta": {"role": "assistant", "content": ""}, "logprobs": None, "finish_reason": None}
                for i in range(len(self.job.rows))]
        return self.chunks("chat.completion.chunk", role, lambda i, text, finish: {
            "index": i, "delta": {"content": text} if text else {}, "logprobs": None, "finish_reason": finish})

    def completion_chunks(self) -> AsyncIterator[str]:
        echo = [{"index": i, "text": prefix, "logprobs": None, "finish_reason": None}
                for i, prefix in enumerate(self.prefixes)] if any(self.prefixes) else None
        return self.chunks("text_completion", echo, lambda i, text, finish: {
            "index": i, "text": text, "logprobs": None, "finish_reason": finish})

    async def chunks(self, object: str, first: list[dict] | None,
                     choice: Callable[[int, str, str | None], dict]) -> AsyncIterator[str]:
        """The server-sent events: `first` choices (if any), a chunk per update, the usage if asked, [DONE]."""
        head = self.head(object)
        if first:
            yield sse({**head, "choices": first})
        try:
            async for update in self.updates():
                yield sse({**head, "choices": [choice(i, text, finish) for i, text, finish in update]})
        except ApiError as err:  # the headers are sent: the error is the last event (OpenAI's way; clients raise it)
            yield sse(err.body()) + "data: [DONE]\n\n"
            return
        options = self.req.stream_options
        if options is not None and options.include_usage:
            yield sse({**head, "choices": [], "usage": self.usage()})
        yield "data: [DONE]\n\n"


class Shown:
    """What a TextStream wrote for one choice: all of it, and what was not taken yet."""

    def __init__(self):
        self.text, self.taken = "", 0

    def write(self, text: str) -> None:
        self.text += text

    def flush(self) -> None:
        pass

    def take(self) -> str:
        new, self.taken = self.text[self.taken:], len(self.text)
        return new


def sse(obj: dict) -> str:
    return f"data: {json.dumps(obj, separators=(',', ':'))}\n\n"


class EventStream(StreamingResponse):
    """Server-sent events whose rows stop when the response ends for any reason: done, the client gone (the
    server cancels the stream, or a send fails), or an error."""

    def __init__(self, events: AsyncIterator[str], on_close: Callable[[], None]):
        super().__init__(events, media_type="text/event-stream",
                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self.on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.on_close()


async def until_done_or_gone(done: Coroutine, request: Request, on_gone: Callable[[], None]) -> None:
    """Await `done`; if the client disconnects first, call on_gone (so a non-streamed answer nobody waits for
    stops too) and stop waiting."""
    work = asyncio.ensure_future(done)
    watch = asyncio.ensure_future(disconnected(request))
    try:
        await asyncio.wait({work, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
    if not work.done():
        on_gone()
        work.cancel()
        raise ApiError(499, "the client closed the request")
    work.result()  # raises what the work raised


async def disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def read_body(request: Request, limit: int) -> bytes:
    """The body, or a 413 once it is over `limit` bytes (by its Content-Length, or as it arrives)."""
    too_large = ApiError(413, f"the request body is over {limit} bytes (this server's --max-body-bytes)",
                         code="request_too_large")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    return bytes(body)


# --------------------------------------------------------------------------- errors and the API key

def error_response(err: ApiError, headers: dict | None = None) -> JSONResponse:
    return JSONResponse(err.body(), status_code=err.status, headers=headers)


async def api_error(request: Request, err: ApiError) -> Response:
    headers = {"Retry-After": "1"} if err.status == 503 else None
    return error_response(err, headers)


async def http_error(request: Request, err: HTTPException) -> Response:
    """Starlette's own errors (no such route: 404, wrong method: 405) in OpenAI's shape."""
    message = {404: f"no route {request.url.path}", 405: f"{request.method} is not allowed on {request.url.path}"}
    return error_response(ApiError(err.status_code, message.get(err.status_code, str(err.detail))), err.headers)


async def server_error(request: Request, err: Exception) -> Response:
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=err)
    return error_response(ApiError(500, "the server failed on this request (its log says why)", type="server_error"))


def is_open(path: str) -> bool:
    """Paths answered without the API key: the health check and the page's static files."""
    return path in ("/health", "/") or path.startswith("/static/")


class RequireKey:
    """Every other path needs `Authorization: Bearer KEY` (compared in constant time), else a 401."""

    def __init__(self, app: ASGIApp, key: str):
        self.app, self.key = app, key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_open(scope["path"]) or self.authorized(scope):
            await self.app(scope, receive, send)
            return
        err = ApiError(401, "a valid API key is needed: send `Authorization: Bearer <key>`", code="invalid_api_key")
        await error_response(err, {"WWW-Authenticate": "Bearer"})(scope, receive, send)

    def authorized(self, scope: Scope) -> bool:
        scheme, _, given = dict(scope["headers"]).get(b"authorization", b"").partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(given.strip(), self.key)


# --------------------------------------------------------------------------- the app

class Uvicorn(uvicorn.Server):
    """uvicorn, which ends the requests in flight as it starts shutting down (a 503; a stream's last event is
    the error), so that Ctrl-C stops the server at once rather than after a stream of max_tokens."""

    def __init__(self, config: uvicorn.Config, server: Server):
        super().__init__(config)
        self.server = server

    async def shutdown(self, sockets=None) -> None:
        self.server.batcher.shut_down()
        await super().shutdown(sockets)


def build_app(server: Server) -> Starlette:
    """The ASGI app; the batcher's decode thread runs while the app does (its lifespan)."""

    @asynccontextmanager
    async def lifespan(app: Starlette):
        server.batcher.start()
        try:
            yield
        finally:
            server.batcher.stop()

    routes = [
        Route("/v1/chat/completions", server.chat_completions, methods=["POST"]),
        Route("/v1/completions", server.completions, methods=["POST"]),
        Route("/v1/models", server.list_models, methods=["GET"]),
        Route("/v1/models/{model:path}", server.get_model, methods=["GET"]),
        Route("/health", server.health, methods=["GET"]),
        Route("/", server.page, methods=["GET"]),
    ]
    if STATIC.is_dir():
        routes.append(Mount("/static", StaticFiles(directory=STATIC)))  # refuses paths that leave the folder
    handlers = {ApiError: api_error, HTTPException: http_error, Exception: server_error}
    app = Starlette(routes=routes, exception_handlers=handlers, lifespan=lifespan)
    if server.settings.api_key:
        app.add_middleware(RequireKey, key=server.settings.api_key)
    return app
