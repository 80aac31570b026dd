"""generate: sample text from a trained checkpoint, printed as the tokens come.

    python -m stages.generate --prompt "ROMEO:" --max-new-tokens 200 --temperature 0.7 --top-k 40
    python -m stages.generate --prompt-file prompt.txt --top-p 0.9 --repetition-penalty 1.2 --stop "\\n\\n"
    echo "ROMEO:" | python -m stages.generate --prompt - --num-samples 4
    python -m stages.generate --chat --system "Answer briefly."      # a chat with the fine-tuned model

--stop takes the escapes \\n, \\t, \\r and \\\\ as a shell passes them ("\\n\\n" stops at a blank line).

The prompt is --prompt TEXT, the file --prompt-file PATH, or stdin with --prompt - (or --prompt-file -);
stdin is read only when asked for, so a script with an open stdin never hangs. No prompt: a new document.
Generation stops at the end-of-text token, at any --stop string (the text is cut before it) or after
--max-new-tokens. One sample is streamed; several (--num-samples) run as one batch and are printed
one after another when all are done. Sampling goes through stages/lib/model/decoding.py, the streamed
text through stages/lib/model/text_stream.py.

--chat reads your messages from stdin, a line each (a message of several lines goes between two lines of
\"\"\"), and streams the model's answers in the chat format, keeping the history
(stages/lib/model/chat_session.py); /exit or end of input (Ctrl-D) ends the chat.
"""
from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from typing import TextIO

import torch

from stages.lib.errors import UserError, run_stage
from stages.lib.model.chat_session import EXIT, MULTILINE, chat
from stages.lib.model.checkpoint import check_tokenizer, load_checkpoint
from stages.lib.model.decoding import Sampling, generate
from stages.lib.model.text_stream import TextStream
from stages.lib.runtime import resolve_device
from stages.lib.tokens.tokenizer_adapter import load_tokenizer
from stages.lib.training import memory

CHECKPOINT = "artifacts/checkpoints/model.pt"
CHAT_CHECKPOINT = "artifacts/checkpoints/sft.pt"  # the fine-tuned model (the sft stage)
ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}


def unescape(text: str) -> str:
    """The text with \\n, \\t, \\r and \\\\ decoded: a shell passes "\\n" as a backslash and an n.
    Other backslashes stay as they are."""
    return re.sub(r"\\([ntr\\])", lambda m: ESCAPES[m.group(1)], text)


class ShowDefaults(argparse.ArgumentDefaultsHelpFormatter):
    """--help shows each option's default, except where there is none to show."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False, []):
            return action.help
        return super()._get_help_string(action)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Sample text from a trained checkpoint, streamed as it comes.",
                                     formatter_class=ShowDefaults)
    parser.add_argument("--checkpoint", default=None,
                        help=f"the model: {CHECKPOINT}, or {CHAT_CHECKPOINT} with --chat")
    parser.add_argument("--tokenizer", default="artifacts/tokenizer",
                        help="tokenizer folder the model was trained with")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--prompt", default=None, help="text to continue; - reads stdin (none: a new document)")
    source.add_argument("--prompt-file", default=None, metavar="PATH", help="UTF-8 file to continue; - is stdin")
    parser.add_argument("--max-new-tokens", type=int, default=200, help="tokens generated at most")
    parser.add_argument("--temperature", type=float, default=0.8, help="0 is greedy")
    parser.add_argument("--top-k", type=int, default=40, help="0 is no limit")
    parser.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling; 1 is no limit")
    parser.add_argument("--repetition-penalty", type=float, default=1.0,
                        help="> 1 makes tokens already in the text less likely; 1 is off")
    parser.add_argument("--stop", action="append", default=[], type=unescape, metavar="TEXT",
                        help="stop before this text (repeatable; \\n, \\t, \\r and \\\\ are decoded, so \"\\n\\n\" "
                             "stops at a blank line); the end-of-text token always stops")
    parser.add_argument("--num-samples", type=int, default=1, help="samples generated together, as one batch")
    parser.add_argument("--seed", type=int, default=1337, help="the same seed and options give the same text")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"], help="where to run")
    parser.add_argument("--chat", action="store_true",
                        help=f"chat: a message per line from stdin, history kept; a message of several lines "
                             f"goes between two lines of {MULTILINE}; {EXIT} or Ctrl-D ends it")
    parser.add_argument("--system", default=None, metavar="TEXT", help="--chat: a system prompt")
    args = parser.parse_args(argv)
    if args.checkpoint is None:
        args.checkpoint = CHAT_CHECKPOINT if args.chat else CHECKPOINT
    return args


def check_args(args: argparse.Namespace) -> Sampling:
    """UserError for a bad value; the sampling options otherwise."""
    sampling = Sampling(args.temperature, args.top_k, args.top_p, args.repetition_penalty)
    sampling.validate(lambda field: "--" + field.replace("_", "-"))
    if args.max_new_tokens < 0:
        raise UserError(f"--max-new-tokens={args.max_new_tokens} must be >= 0")
    if args.num_samples < 1:
        raise UserError(f"--num-samples={args.num_samples} must be >= 1")
    if not 0 <= args.seed < 2 ** 32:
        raise UserError(f"--seed={args.seed} must be in 0 .. 2**32 - 1")
    if "" in args.stop:
        raise UserError("--stop '' is empty: give the text to stop at")
    if args.chat and (args.prompt is not None or args.prompt_file is not None or args.num_samples != 1):
        raise UserError("--chat reads its messages from stdin: drop --prompt, --prompt-file and --num-samples")
    if args.system is not None and not args.chat:
        raise UserError("--system is for --chat")
    return sampling


def read_prompt(args: argparse.Namespace, stdin: TextIO) -> str:
    if args.prompt == "-" or args.prompt_file == "-":
        return stdin.read()
    if args.prompt_file is not None:
        try:
            with open(args.prompt_file, encoding="utf-8") as f:
                return f.read()
        except FileNotFoundError:
            raise UserError(f"--prompt-file {args.prompt_file} not found") from None
        except UnicodeDecodeError as err:
            raise UserError(f"--prompt-file {args.prompt_file} is not UTF-8 text ({err.reason} at byte "
                            f"{err.start})") from None
        except OSError as err:
            raise UserError(f"--prompt-file {args.prompt_file} cannot be read ({err.strerror})") from None
    return args.prompt or ""


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    sampling = check_args(args)
    prompt = "" if args.chat else read_prompt(args, sys.stdin)
    device = resolve_device(args.device, "--device")
    model, meta = load_checkpoint(args.checkpoint, device)
    tok = load_tokenizer(args.tokenizer)
    check_tokenizer(meta, tok.fingerprint, args.tokenizer)

    # Each sample keeps its own cache of keys and values: refuse a --num-samples that cannot fit.
    rows = args.num_samples
    need = memory.kv_cache_bytes(model.cfg, rows) + memory.scoring_bytes(model.cfg, tok.vocab_size, rows, 1)
    memory.check_inference_fits(need, device, f"--num-samples {rows}", "lower --num-samples")
    generator = torch.Generator(device=device).manual_seed(args.seed)
    if args.chat:
        chat(model, tok, sampling, generator, sys.stdin, sys.stdout, sys.stderr, system=args.system,
             max_new_tokens=args.max_new_tokens, stop_strings=args.stop)
        return
    prompt_ids = tok.encode(prompt) or [tok.eot_id]  # an empty prompt starts a new document
    batch = torch.tensor([prompt_ids] * args.num_samples, device=device)  # [num_samples, T]
    prompt_text = tok.decode(prompt_ids)
    options = dict(stop_token=tok.eot_id, stop_strings=args.stop, decode=tok.decode, generator=generator)
    if args.num_samples == 1:
        sys.stdout.write(prompt_text)
        sys.stdout.flush()
        text_stream = TextStream(tok.decode, args.stop, sys.stdout, tok.eot_id)
        out = generate(model, batch, args.max_new_tokens, sampling, on_step=lambda step: text_stream.add(step[0]),
                       **options)
        text_stream.finish(out.texts[0])
        print()
        return
    out = generate(model, batch, args.max_new_tokens, sampling, **options)
    for i, text in enumerate(out.texts):
        print(f"--- sample {i + 1}")
        print(prompt_text + text)


if __name__ == "__main__":
    run_stage(main)
