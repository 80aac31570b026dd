"""A chat with a fine-tuned model in a terminal: a message per input line, answers streamed as they come.

A message of several lines (the tuned format: a question, a blank line, then the text) goes between two
lines that hold only MULTILINE. Each message is answered in the chat format (stages/lib/tokens/chat.py)
with the conversation so far as context; an answer ends at <|end|> (or end-of-text, or a stop string).
A message that cannot fit the context even alone is refused before the history is touched; when the
history outgrows the context, the oldest turns are dropped (the system prompt stays) and a note says so.
An empty answer comes with a note saying why. EXIT or the end of input ends the chat.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

import torch

from stages.lib.model.decoding import KEEP_FRACTION, Sampling, cut_at_stop, stream
from stages.lib.model.gpt import GPT
from stages.lib.model.text_stream import TextStream
from stages.lib.tokens.chat import ChatFormat
from stages.lib.tokens.tokenizer_adapter import Tokenizer

EXIT = "/exit"
MULTILINE = '"""'  # a line holding only this opens a message of several lines, and the next such line ends it


def read_message(stdin: TextIO, out: TextIO) -> str | None:
    """The next message: one line, or the lines between two MULTILINE lines; None at EXIT or end of input."""
    line = stdin.readline()
    if not line or line.strip() == EXIT:
        return None
    if line.strip() != MULTILINE:
        return line.rstrip("\n")
    lines = []
    while True:
        if stdin.isatty():
            out.write(". ")
            out.flush()
        line = stdin.readline()
        if not line or line.strip() == MULTILINE:  # end of input closes an open message too
            return "\n".join(lines)
        lines.append(line.rstrip("\n"))


def fit_history(messages: list[dict], fmt: ChatFormat, budget: int) -> tuple[list[dict], int]:
    """The messages whose prompt fits in `budget` tokens, dropping the oldest turns (the system prompt stays),
    and how many messages were dropped. The last message (the new one) is never dropped."""
    system = messages[:1] if messages and messages[0]["role"] == "system" else []
    turns = messages[len(system):]
    dropped = 0
    while len(turns) > 1 and len(fmt.encode_prompt(system + turns)) > budget:
        cut = next((i for i in range(1, len(turns)) if turns[i]["role"] == "user"), len(turns) - 1)
        turns, dropped = turns[cut:], dropped + cut  # a whole turn: the user message and the answers to it
    return system + turns, dropped


def chat(model: GPT, tok: Tokenizer, sampling: Sampling, generator: torch.Generator, stdin: TextIO, out: TextIO,
         err: TextIO, *, system: str | None, max_new_tokens: int, stop_strings: Sequence[str]) -> None:
    """Answer each message from stdin in turn, streaming the answers, with the conversation as context."""
    fmt = ChatFormat(tok)
    # The prompt keeps at most what the decoding loop keeps when it cuts the context, so the answer has room.
    budget = max(1, int(model.cfg.block_size * KEEP_FRACTION))
    history = [{"role": "system", "content": system}] if system else []
    device = next(model.parameters()).device
    while True:
        if stdin.isatty():
            out.write("> ")
            out.flush()
        message = read_message(stdin, out)
        if message is None:
            return
        if not message.strip():
            continue
        new = {"role": "user", "content": message}
        alone = len(fmt.encode_prompt((history[:1] if system else []) + [new]))
        if alone > budget:  # refused before any of the history is dropped for it
            err.write(f"(your message is {alone} tokens with the template, over the {budget} the "
                      f"{model.cfg.block_size}-token context leaves: say it shorter; the history is kept)\n")
            continue
        history, dropped = fit_history(history + [new], fmt, budget)
        prompt = fmt.encode_prompt(history)
        if dropped:
            err.write(f"(dropped the {dropped} oldest messages to fit the {model.cfg.block_size}-token context)\n")
        text = answer(model, tok, fmt, torch.tensor([prompt], device=device), sampling, generator, out,
                      max_new_tokens=max_new_tokens, stop_strings=stop_strings)
        if not text:
            err.write("(the answer is empty: " + ("--max-new-tokens is 0)\n" if max_new_tokens == 0 else
                      "the model ended its turn at once, or began with a --stop string; ask again or "
                      "raise --temperature)\n"))
        history.append({"role": "assistant", "content": text})


def answer(model: GPT, tok: Tokenizer, fmt: ChatFormat, prompt: torch.Tensor, sampling: Sampling,
           generator: torch.Generator, out: TextIO, *, max_new_tokens: int, stop_strings: Sequence[str]) -> str:
    """Stream the model's answer to `prompt` ([1, T]), up to <|end|> (or end-of-text, or a stop string);
    return it."""
    text_stream = TextStream(tok.decode, stop_strings, out, fmt.end_id)
    ids: list[int] = []
    for (token,) in stream(model, prompt, max_new_tokens, sampling, stop_token=fmt.end_id,
                           stop_strings=stop_strings, decode=tok.decode, generator=generator):
        if token in (fmt.end_id, fmt.eot_id):  # the model may also end the document: that ends its turn too
            break
        ids.append(token)
        text_stream.add(token)
    text, _ = cut_at_stop(tok.decode(ids), stop_strings)
    text_stream.finish(text)
    out.write("\n")
    out.flush()
    return text
