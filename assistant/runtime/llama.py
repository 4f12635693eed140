"""llama-cpp-python backend over GGUF files.

Generation drives ``Llama.generate`` directly (token by token, with an incremental UTF-8 decoder) rather than
``create_completion``, which re-detokenizes the whole reply at every token: exact token counts and timings, and
no per-token overhead beyond llama.cpp itself. The prompt is rendered with the GGUF's own chat template; a GGUF
without one is a base model and gets a question-and-answer document instead (``assistant.runtime.completion``).
A repeat penalty guards against loops, and a reply that loops anyway is cut (``assistant.loops``).
"""

from __future__ import annotations

import codecs
import contextlib
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from assistant.errors import ModelError
from assistant.loops import LoopDetector
from assistant.models import check_gguf
from assistant.runtime.base import Chunk, GenerationParams, partial_marker
from assistant.runtime.completion import STOPS as COMPLETION_STOPS
from assistant.runtime.completion import format_completion
from assistant.runtime.gguf import check_adapter

if TYPE_CHECKING:
    from assistant.config import Settings
    from assistant.models import ModelSpec

# Where a chat model that keeps writing past its turn is cut off.
TURN_MARKERS = ["<|im_end|>", "<|im_start|>", "<end_of_turn>", "<start_of_turn>"]


def split_stop(text: str, stops: list[str]) -> tuple[str, str, bool]:
    """Split streamed text into (safe to show, held back, stopped).

    Text that could be the start of a stop marker is held back until the next token decides it.
    """
    for stop in stops:
        at = text.find(stop)
        if at != -1:
            return text[:at], "", True
    hold = partial_marker(text, stops)
    return (text[: len(text) - hold], text[len(text) - hold :], False) if hold else (text, "", False)


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """llama.cpp writes load logs straight to fd 2; keep the user's terminal clean."""
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


class LlamaBackend:
    """A GGUF model loaded through llama-cpp-python."""

    def __init__(
        self,
        path: Path,
        *,
        name: str,
        n_ctx: int = 4096,
        threads: int = 1,
        adapter: Path | None = None,
        verbose: bool = False,
    ) -> None:
        check_gguf(path)
        if adapter is not None:
            check_adapter(adapter, path)  # llama.cpp does not notice a LoRA file it refuses: its first decode crashes
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self.name = name
        self.path = path
        self.adapter_path: Path | None = adapter
        self.adapter_version: str | None = adapter.stem if adapter is not None else None
        self._lora: Any = None  # the adapter set_adapter loaded (one given here belongs to Llama itself)
        try:
            with _quiet_stderr():
                self.llm = Llama(
                    model_path=str(path),
                    n_ctx=n_ctx,
                    n_threads=threads,
                    n_threads_batch=threads,
                    lora_path=str(adapter) if adapter is not None else None,
                    verbose=verbose,
                )
        except (ValueError, RuntimeError, OSError) as exc:
            raise ModelError(
                f"The model file {path} could not be loaded ({exc}); it may be corrupt or incomplete. "
                "Add it again or pick another model with `assistant models use NAME`."
            ) from exc
        self.n_ctx = self.llm.n_ctx()
        self.threads = threads
        model = self.llm._model
        eos, bos = self.llm.token_eos(), self.llm.token_bos()
        self._bos = bos
        self._bos_text = model.token_get_text(bos) if bos != -1 else ""
        self.architecture = self.llm.metadata.get("general.architecture", "unknown")
        template = self.llm.metadata.get("tokenizer.chat_template")
        self.chat = bool(template)  # no chat template: a base model (Gemma 3 270M ships none)
        self._stops = TURN_MARKERS if self.chat else [*TURN_MARKERS, *COMPLETION_STOPS]
        self._formatter = (
            Jinja2ChatFormatter(
                template=template,
                eos_token=model.token_get_text(eos) if eos != -1 else "",
                bos_token=model.token_get_text(bos) if bos != -1 else "",
                add_generation_prompt=True,
            )
            if template
            else None
        )

    def set_adapter(self, path: Path | None, version: str | None = None) -> float:
        """Swap the LoRA adapter on the loaded model (None: the base model alone); the seconds it took.

        The file is checked first: llama.cpp refuses a bad one with a null pointer that the bindings never test,
        and the next decode crashes. A file that cannot be applied raises ModelError and leaves the base model
        serving, so a damaged adapter never takes the chat down with it.
        """
        started = time.perf_counter()
        if path == self.adapter_path:
            self.adapter_version = version if path is not None else None
            return 0.0
        try:
            lora = self._load_lora(path) if path is not None else None
        except ModelError:
            self._attach(None, None, None)
            raise
        self._attach(lora, path, version)
        return time.perf_counter() - started

    def _load_lora(self, path: Path) -> Any:
        import llama_cpp

        check_adapter(path, self.path)
        with _quiet_stderr():
            lora = llama_cpp.llama_adapter_lora_init(self.llm._model.model, str(path).encode("utf-8"))
        if not lora:  # a NULL pointer from ctypes is falsy, never None
            raise ModelError(f"llama.cpp could not load the adapter {path.name}; delete it or train it again.")
        return lora

    def _attach(self, lora: Any, path: Path | None, version: str | None) -> None:
        import ctypes

        import llama_cpp

        ctx = self.llm._ctx.ctx
        if lora is None:
            failed = llama_cpp.llama_set_adapters_lora(ctx, None, 0, None)
        else:
            loras = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(lora)
            failed = llama_cpp.llama_set_adapters_lora(ctx, loras, 1, (ctypes.c_float * 1)(1.0))
        if failed:
            if lora is not None:
                llama_cpp.llama_adapter_lora_free(lora)
                self._attach(None, None, None)
            raise ModelError(f"llama.cpp could not apply the adapter {path}; the base model answers instead.")
        # The adapter that is off now is freed (a long-running chat may swap many); Llama frees its own at close
        # only when it still holds it.
        for old in (self._lora, self.llm._lora_adapter):
            if old is not None and old is not lora:
                llama_cpp.llama_adapter_lora_free(old)
        self.llm._lora_adapter = None
        self._lora = lora
        self.adapter_path, self.adapter_version = path, version if path is not None else None
        # The prompt cached in the context was computed with the old weights: the next prompt is read anew.
        self.llm.reset()

    def count_tokens(self, text: str) -> int:
        if not text:
            return 0
        return len(self.llm.tokenize(text.encode("utf-8", "replace"), add_bos=False, special=True))

    def format_chat(self, messages: list[dict[str, str]]) -> str:
        if self._formatter is None:
            return format_completion(messages)
        try:
            return self._formatter(messages=messages).prompt  # type: ignore[arg-type]
        except Exception as exc:  # jinja raises on roles a template does not support
            if messages and messages[0]["role"] == "system":
                # Some templates (base models) refuse a system turn: fold it into the first user turn.
                folded = [{"role": "user", "content": messages[0]["content"] + "\n\n" + messages[1]["content"]}]
                return self.format_chat(folded + messages[2:])
            raise ModelError(f"The chat template of {self.name} failed: {exc}.") from exc

    def tokenize_prompt(self, prompt: str) -> list[int]:
        # A template that writes its own BOS must not get a second one.
        own_bos = bool(self._bos_text) and prompt.startswith(self._bos_text)
        return self.llm.tokenize(prompt.encode("utf-8", "replace"), add_bos=not own_bos, special=True)

    def stream(self, prompt: str, params: GenerationParams) -> Iterator[Chunk]:
        import llama_cpp

        llm = self.llm
        started = time.perf_counter()
        tokens = self.tokenize_prompt(prompt)
        room = self.n_ctx - len(tokens)
        if room < 1:
            raise ModelError(f"The prompt ({len(tokens)} tokens) fills the {self.n_ctx}-token context.")
        max_tokens = min(params.max_tokens, room)
        llm.set_seed(params.seed if params.seed >= 0 else random.getrandbits(31))
        vocab = llm._model.vocab
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        stops = [*self._stops, *params.stop]
        loops = LoopDetector() if params.cut_loops else None
        scorer = _TokenLogprob(llm) if params.logprobs else None
        lowest: float | None = None  # the least likely token of the pending chunk
        held = ""  # text that may be the start of a stop marker
        pending = 0  # tokens not yet reported in a chunk
        produced = 0
        finish = "length"
        generator = llm.generate(
            tokens,
            temp=params.temperature,
            top_p=params.top_p,
            top_k=40,
            min_p=0.05,
            repeat_penalty=params.repeat_penalty,
            frequency_penalty=params.frequency_penalty,
            presence_penalty=params.presence_penalty,
        )
        try:
            for token in generator:
                if llama_cpp.llama_vocab_is_eog(vocab, token):
                    finish = "stop"
                    break
                produced += 1
                pending += 1
                if scorer is not None:
                    logprob = scorer(token)
                    lowest = logprob if lowest is None else min(lowest, logprob)
                text, held, stopped = split_stop(held + decoder.decode(llm.detokenize([token])), stops)
                if stopped:
                    held, finish = text, "stop"  # what came before the marker goes out with the last chunk
                    break
                if produced == pending:  # nothing shown yet: drop the template's leading whitespace
                    text = text.lstrip()
                if text:
                    yield Chunk(text=text, tokens=pending, elapsed_s=time.perf_counter() - started, logprob=lowest)
                    pending, lowest = 0, None
                    if loops is not None and loops.feed(text):
                        finish = "loop"  # what it wrote stays; the turn adds a note that it was cut
                        break
                if produced >= max_tokens:
                    break
        finally:
            generator.close()
        tail = held if finish in ("stop", "loop") else held + decoder.decode(b"", final=True)
        if produced == pending:
            tail = tail.lstrip()
        yield Chunk(
            text=tail, tokens=pending, elapsed_s=time.perf_counter() - started, finish_reason=finish, logprob=lowest
        )

    def close(self) -> None:
        llm: Any = getattr(self, "llm", None)
        if llm is not None:
            llm.close()
            self.llm = None  # type: ignore[assignment]


class _TokenLogprob:
    """The log-probability the model gave a token it just sampled, read from the logits llama.cpp still holds.

    ``Llama.generate`` yields each token right after sampling it from the last position's logits and before the
    next decode, so the row is there to read, without a copy and without ``logits_all`` (which would keep a row per
    token). The raw distribution, before temperature and penalties: how sure the model itself was. One
    log-sum-exp over the vocabulary (~30 us for SmolLM2's 49k, against ~6 ms a token).
    """

    def __init__(self, llm: Any) -> None:
        import llama_cpp
        import numpy as np

        self._np = np
        self._get = llama_cpp.llama_get_logits_ith
        self._ctx = llm._ctx.ctx
        self._n_vocab = llm.n_vocab()

    def __call__(self, token: int) -> float:
        np = self._np
        row = np.ctypeslib.as_array(self._get(self._ctx, -1), shape=(self._n_vocab,))
        top = row.max()
        return float(row[token] - top - np.log(np.exp(row - top).sum()))


def load(spec: ModelSpec, settings: Settings, adapter: Path | None, n_ctx: int) -> LlamaBackend:
    """The runtime registry's entry point for GGUF models."""
    assert spec.path is not None
    return LlamaBackend(spec.path, name=spec.name, n_ctx=n_ctx, threads=settings.effective_threads(), adapter=adapter)
