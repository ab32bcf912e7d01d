"""A Hugging Face causal LM's residual stream, token by token, with character offsets.

`load_lm` loads any Hugging Face causal LM (a local directory, or a GGUF file that transformers dequantizes) with a
fast tokenizer. `ResidualReader` turns documents into per-token residual activations at layer L
(= `hidden_states[L]`, the stream after L blocks) with character offsets from the fast tokenizer, so labels are
tokenizer-independent. Documents are cut into windows of `max_tokens`, each window gets the BOS token as an attention
sink (its huge-norm activation is dropped), and the forward pass stops at layer L.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from tokfilter.errors import UserError


def load_lm(model: str | Path, gguf_file: str | None = None, dtype: torch.dtype = torch.float32):
    """(model, fast tokenizer) from a local HF directory or GGUF file (`model` = the .gguf path, or a directory plus
    `gguf_file`). Never downloads: a missing path is a UserError."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(model)
    if path.is_file() and path.suffix == ".gguf":
        path, gguf_file = path.parent, path.name
    if not path.is_dir():
        raise UserError(f"--model {model}: no such local model directory or .gguf file")
    if gguf_file and not (path / gguf_file).is_file():
        raise UserError(f"--gguf-file {gguf_file}: not found in {path}")
    kwargs = {"gguf_file": gguf_file} if gguf_file else {}
    # weights from GGUF or safetensors only: a pickled pytorch_model.bin is refused, never unpickled
    weights = kwargs if gguf_file else {"use_safetensors": True}
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True, **kwargs)
        lm = AutoModelForCausalLM.from_pretrained(str(path), local_files_only=True, dtype=dtype, **weights)
    except (OSError, ValueError) as err:
        raise UserError(f"--model {model}: cannot load ({str(err).splitlines()[0]})") from None
    if not getattr(tokenizer, "is_fast", False):
        raise UserError(f"--model {model}: needs a fast tokenizer (character offsets), got {type(tokenizer).__name__}")
    return lm.eval(), tokenizer


def _find_blocks(model: nn.Module) -> nn.ModuleList:
    """The transformer's list of blocks: the ModuleList with config.num_hidden_layers entries."""
    n_layers = getattr(model.config, "num_hidden_layers", None)
    for module in model.modules():
        if isinstance(module, nn.ModuleList) and len(module) == n_layers:
            return module
    raise UserError(f"cannot find the {n_layers} transformer blocks of {type(model).__name__}")


class _StopForward(Exception):
    pass


def _trim_offsets(text: str, offsets: np.ndarray) -> np.ndarray:
    """Drop leading/trailing whitespace from each token's char span (BPE tokens often start with a space)."""
    out = offsets.copy()
    for i, (start, end) in enumerate(out.tolist()):
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        out[i] = (start, end)
    return out


class ResidualReader:
    """Per-token residual-stream activations at `layer` (hidden_states[layer]: after `layer` blocks, 1..n_layers)."""

    def __init__(self, model: nn.Module, tokenizer, layer: int, max_tokens: int = 256, batch_size: int = 8,
                 prepend_bos: bool = True):
        n_layers = model.config.num_hidden_layers
        if not 1 <= layer <= n_layers:
            raise UserError(f"--layer {layer}: the model has layers 1..{n_layers}")
        self.model, self.tokenizer, self.layer = model, tokenizer, layer
        self.max_tokens, self.batch_size = max_tokens, batch_size
        self.d_model = model.config.hidden_size
        bos = tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id
        self.bos = bos if prepend_bos else None
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (bos or 0)
        self.blocks = _find_blocks(model)

    def _run(self, windows: list[list[int]]) -> list[np.ndarray]:
        lead = 1 if self.bos is not None else 0
        width = max(len(w) for w in windows) + lead
        ids = torch.full((len(windows), width), self.pad, dtype=torch.long)
        mask = torch.zeros((len(windows), width), dtype=torch.long)
        for row, window in enumerate(windows):
            if lead:
                ids[row, 0] = self.bos
            ids[row, lead:lead + len(window)] = torch.tensor(window, dtype=torch.long)
            mask[row, :lead + len(window)] = 1
        captured = {}

        def hook(module, inputs, output):
            captured["h"] = output[0] if isinstance(output, tuple) else output
            raise _StopForward

        handle = self.blocks[self.layer - 1].register_forward_hook(hook)
        try:
            with torch.no_grad():
                self.model(input_ids=ids, attention_mask=mask, use_cache=False)
        except _StopForward:
            pass
        finally:
            handle.remove()
        hidden = captured["h"].float()
        return [hidden[row, lead:lead + len(window)].numpy() for row, window in enumerate(windows)]

    def read(self, texts: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray]]:
        """[(activations (n_tokens, d_model) float32, char offsets (n_tokens, 2) int64)] per text."""
        encoded = self.tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True)
        windows, owners = [], []
        for doc, ids in enumerate(encoded["input_ids"]):
            for start in range(0, len(ids), self.max_tokens):
                windows.append(ids[start:start + self.max_tokens])
                owners.append(doc)
        pieces: list[list[np.ndarray]] = [[] for _ in texts]
        order = sorted(range(len(windows)), key=lambda i: len(windows[i]))  # similar lengths -> little padding
        for first in range(0, len(order), self.batch_size):
            batch = order[first:first + self.batch_size]
            for i, acts in zip(batch, self._run([windows[i] for i in batch])):
                pieces[owners[i]].append((i, acts))
        results = []
        for doc, text in enumerate(texts):
            offsets = np.asarray(encoded["offset_mapping"][doc], dtype=np.int64).reshape(-1, 2)
            parts = [acts for _, acts in sorted(pieces[doc], key=lambda p: p[0])]
            acts = np.concatenate(parts) if parts else np.zeros((0, self.d_model), dtype=np.float32)
            results.append((acts, _trim_offsets(text, offsets)))
        return results


def collect_activations(reader: ResidualReader, texts: Sequence[str], batch_docs: int = 16,
                        desc: str = "activations") -> list[tuple[np.ndarray, np.ndarray]]:
    """Residual activations + offsets for every text, with a progress bar on stderr."""
    out = []
    with tqdm(total=len(texts), desc=desc, unit="doc", file=sys.stderr, disable=None) as bar:
        for first in range(0, len(texts), batch_docs):
            chunk = texts[first:first + batch_docs]
            out.extend(reader.read(chunk))
            bar.update(len(chunk))
    return out
