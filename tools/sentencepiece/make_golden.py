#!/usr/bin/env python3
"""Golden data for the pure-Swift SentencePiece implementation (Sources/SentencePiece).

Trains two tiny models with the `sentencepiece` Python package and writes what the package
itself produces for a few hundred strings, so the Swift tests compare against the reference
implementation and never against our own output:

  gemma_like_bpe.model   BPE with Gemma/PaliGemma's trainer settings (byte fallback, split digits,
                         identity normaliser, no dummy prefix, user-defined symbols, pad/eos/bos/unk = 0/1/2/3)
  default_unigram.model  the package's defaults (unigram, nmt_nfkc, add_dummy_prefix, ...)
  golden_<model>.json    {"model":..., "vocab_size":..., "ids": {...}, "encode": [{"text","ids","pieces","decoded"}],
                          "decode": [{"ids","text"}]}
  pi0_prompts.json       π0 prompts through the Hugging Face fast tokenizer converted from gemma_like_bpe.model
                         (what LeRobot's TokenizerProcessorStep runs: padding="max_length", max_length=48,
                         truncation=True, BOS added), only written when `transformers` is installed.

Usage (from the repository root):
    python3 -m venv /work/venvs/sp && /work/venvs/sp/bin/pip install sentencepiece protobuf tokenizers "transformers<5"
    /work/venvs/sp/bin/python tools/sentencepiece/make_golden.py Tests/SentencePieceTests/Fixtures
Deterministic: fixed random seeds, single training thread (re-running reproduces the files byte for byte).

Golden data for another model, e.g. the real PaliGemma tokenizer (see docs/TOKENIZER.md):
    /work/venvs/sp/bin/python tools/sentencepiece/make_golden.py --model path/to/tokenizer.model out.json
    PI0_TOKENIZER_MODEL=path/to/tokenizer.model PI0_TOKENIZER_GOLDEN=out.json swift test --filter SentencePieceTests
and, to compare π0 prompts with the HF tokenizer.json LeRobot loads (the snapshot folder of the HF repo):
    ... make_golden.py --model path/to/tokenizer.model out.json --hf path/to/snapshot prompts.json
    PI0_TOKENIZER_MODEL=... PI0_TOKENIZER_PROMPTS=prompts.json swift test --filter SentencePieceTests
"""
import io
import json
import os
import random
import sys

import sentencepiece as spm

OUT = sys.argv[1] if len(sys.argv) > 1 else "Tests/SentencePieceTests/Fixtures"

# Gemma's tokenizer.model has user-defined pieces for turn markers, runs of "\n", runs of "▁", tabs,
# HTML tags, <locNNNN>/<segNNN> (PaliGemma). A small representative subset, including prefixes of one
# another ("<start" / "<start_of_turn>", "\n" / "\n\n" / "\n\n\n") to exercise longest-match.
USER_DEFINED = [
    "<start_of_turn>", "<end_of_turn>", "<start", "\n", "\n\n", "\n\n\n", "\t", "\t\t",
    "▁▁", "▁▁▁", "▁▁▁▁", "<b>", "</b>", "<table>", "<loc0000>", "<loc0512>", "<loc1023>", "<seg042>",
    "<mask>", "[@BOS@]",
]

OBJECTS = ["red block", "blue cube", "green bowl", "yellow sponge", "plate", "drawer", "cup", "bottle",
           "towel", "spoon", "apple", "banana", "lid", "pot", "marker", "box", "can", "knife", "basket"]
PLACES = ["on the table", "in the drawer", "into the bowl", "next to the plate", "on the left shelf",
          "in the sink", "behind the box", "onto the tray", "near the robot", "in the top drawer"]
VERBS = ["pick up", "put", "place", "move", "push", "open", "close", "grasp", "lift", "stack", "slide",
         "rotate", "turn", "wipe", "pour", "fold", "insert", "remove", "drop", "hand over"]
MULTI = [
    "Der Roboter nimmt den roten Würfel und legt ihn in die Schüssel.",
    "Öffne die Schublade und räume die Tasse weg, bitte.",
    "Le robot prend la bouteille et la pose à côté de l'assiette.",
    "Ferme le tiroir, s'il te plaît, et essuie la table.",
    "El robot recoge la esponja amarilla y la deja en el fregadero.",
    "Coloca el bloque azul encima del cubo verde.",
    "Il robot sposta la tazza vicino al piatto.",
    "Робот берёт красный кубик и кладёт его в миску.",
    "Открой ящик и положи туда ложку.",
    "Το ρομπότ σηκώνει το μπλε κουτί.",
    "ロボットは赤いブロックを拾ってボウルに入れます。",
    "引き出しを開けてください。",
    "机器人拿起红色的方块放进碗里。",
    "请把杯子放在桌子上。",
    "로봇이 파란 상자를 집어 듭니다.",
    "الروبوت يلتقط المكعب الأحمر",
    "रोबोट लाल ब्लॉक उठाता है",
    "Robot podnosi czerwony klocek i odkłada go do miski.",
    "Robotten løfter den blå kassen forsiktig.",
    "Đặt cái cốc lên bàn.",
]


def corpus_lines(rng: random.Random, n: int):
    lines = []
    for _ in range(n):
        k = rng.random()
        if k < 0.55:
            s = f"{rng.choice(VERBS)} the {rng.choice(OBJECTS)} {rng.choice(PLACES)}"
            if rng.random() < 0.5:
                s = s.capitalize()
            if rng.random() < 0.3:
                s += f" and then {rng.choice(VERBS)} the {rng.choice(OBJECTS)}"
            if rng.random() < 0.3:
                s += rng.choice([".", "!", "\n", " ", "  ", "\t"])
        elif k < 0.8:
            s = rng.choice(MULTI)
        elif k < 0.9:
            s = (f"step {rng.randint(0, 5000)}: move {rng.randint(1, 999)} mm at {rng.uniform(0, 10):.3f} m/s, "
                 f"joint {rng.randint(0, 7)} = {rng.uniform(-3.2, 3.2):.4f} rad")
        else:
            s = ("<start_of_turn>user\n" + rng.choice(VERBS) + " the " + rng.choice(OBJECTS)
                 + "<end_of_turn>\n<start_of_turn>model\n<b>ok</b>\n\n" + "    " + "done")
        lines.append(s)
    return lines


def train(prefix: str, text_lines, **kw):
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(text_lines), model_writer=model,
                                   num_threads=1, **kw)
    data = model.getvalue()
    with open(os.path.join(OUT, prefix + ".model"), "wb") as f:
        f.write(data)
    return spm.SentencePieceProcessor(model_proto=data)


def golden_strings(rng: random.Random, corpus):
    s = [
        "", " ", "  ", "   ", "    ", "\t", "\n", "\n\n", "\n\n\n", "\n\n\n\n\n", "\r\n", "a", "A", "0", "7",
        "pick up the red block", "Pick up the red block\n", " pick up the red block", "pick up the red block ",
        "  leading two", "trailing two  ", "multiple   spaces   inside", "tab\tseparated\tvalues",
        "line one\nline two\n", "mixed \t \n whitespace", "12345", "3.14159", "x=-0.25, y=1e-3",
        "step 1234: move 56 mm", "0000000000", "v2.0.1-rc3", "Ⅻ ½ ² ① ９８７",  # non-ASCII digits
        "<start_of_turn>user\npick up the cup<end_of_turn>\n<start_of_turn>model\n",
        "<start_of_turn><end_of_turn>", "<start_of_turn", "<start", "<sta", "<start_of_tur>",
        "<b>bold</b> and <table>", "<loc0000><loc0512><loc1023><seg042>", "<loc0001>", "<mask> [@BOS@]",
        "<bos>", "<eos>", "<pad>", "<unk>", "<0x41>", "<s>", "</s>",  # control/byte piece names as text
        "▁", "▁▁", "▁▁▁▁▁", "a▁b", " ▁ ", "_underscore_", "\u3000ideographic space", "nb\u00a0sp",
        "Der Roboter nimmt den roten Würfel.", "Le robot prend la bouteille à côté.", "Робот берёт кубик.",
        "ロボットは赤いブロックを拾います。", "机器人拿起红色的方块。", "로봇이 상자를 집어 듭니다.",
        "Dặt cái cốc lên bàn.", "ελληνικά", "עברית", "ภาษาไทย", "ქართული", "Ꭰꭱ", "ᚠᚢᚦ",
        "emoji 🤖🦾👍🏽 👩‍👩‍👧‍👦 🇩🇪", "😀", "🏳️‍🌈", "e\u0301 vs é", "n\u0303", "a\u0300\u0301\u0302\u0303",
        "Å (U+212B) vs Å (U+00C5)", "ﬁ ligature", "Ｆｕｌｌｗｉｄｔｈ", "ｶﾀｶﾅ", "㍿", "\u200b zero width",
        "\u0000nul", "bell\u0007", "del\u007f", "\ufeffbom", "\uffff", "\U0010ffff", "\ue000 private",
        "\u2028 line sep", "🀄 mahjong", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "ÀÁÂÃÄÅÆÇÈÉ", "ßẞ", "İı",
    ]
    s += corpus[:60]
    # Random mixtures of corpus fragments, whitespace, digits, user-defined symbols and unseen characters.
    pool = ["pick", "up", "the", "block", "drawer", "Würfel", "ロボット", "机器人", "🤖", "\n", "\n\n", "\t",
            " ", "  ", "   ", "<start_of_turn>", "<end_of_turn>", "<b>", "<loc0512>", "0", "42", "999",
            "3.5", "-", ".", ",", "漢字", "ឡ", "ꙮ", "\u0301", "é", "ç", "Ω", "▁", "<", ">", "_", "\r"]
    for _ in range(250):
        n = rng.randint(1, 12)
        s.append("".join(rng.choice(pool) for _ in range(n)))
    for _ in range(60):
        # Random code points from assorted blocks, most of them never seen in training.
        cps = [rng.choice([rng.randint(0x20, 0x7e), rng.randint(0xa0, 0x24f), rng.randint(0x370, 0x3ff),
                           rng.randint(0x400, 0x4ff), rng.randint(0x3040, 0x30ff), rng.randint(0x4e00, 0x9fff),
                           rng.randint(0xac00, 0xd7a3), rng.randint(0x1f300, 0x1f6ff)])
               for _ in range(rng.randint(1, 20))]
        s.append("".join(map(chr, cps)))
    # Long strings.
    s.append(" ".join(corpus[60:160]))
    s.append("\n".join(corpus[160:200]))
    s.append("a" * 3000)
    s.append(" " * 500 + "x" + "\n" * 300)
    s.append("1234567890" * 200)
    s.append("".join(chr(0x4e00 + (i * 37) % 20000) for i in range(1500)))
    s.append("🤖" * 400)
    return s


def golden(sp: spm.SentencePieceProcessor, name: str, strings, rng: random.Random, path=None):
    enc = []
    for t in strings:
        ids = sp.encode(t)
        pieces = sp.encode(t, out_type=str)
        assert len(ids) == len(pieces)
        enc.append({"text": t, "ids": ids, "pieces": pieces, "decoded": sp.decode(ids)})
    n = sp.get_piece_size()
    dec = []
    for _ in range(200):
        # Arbitrary id sequences: controls, unk, byte pieces that do not form valid UTF-8, user-defined...
        ids = [rng.randrange(n) if rng.random() < 0.6 else rng.randrange(min(n, 300))
               for _ in range(rng.randint(0, 16))]
        dec.append({"ids": ids, "text": sp.decode(ids)})
    for ids in ([], [0], [1], [2], [3], [sp.unk_id()], [sp.unk_id(), sp.unk_id()]):
        dec.append({"ids": ids, "text": sp.decode(ids)})
    if sp.piece_to_id("<0xE6>") != sp.unk_id():
        b = lambda x: sp.piece_to_id("<0x%02X>" % x)
        for seq in ([0xE6, 0x97, 0xA5], [0xE6, 0x97], [0xE6, 0x41], [0xF0, 0x9F, 0xA4, 0x96], [0x80, 0x80],
                    [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xEF, 0xBF, 0xBD], [0xF4, 0x90, 0x80, 0x80], [0xFF]):
            ids = [b(x) for x in seq]
            dec.append({"ids": ids, "text": sp.decode(ids)})
            dec.append({"ids": [sp.piece_to_id("▁a") if sp.piece_to_id("▁a") != sp.unk_id() else 5] + ids
                        + [sp.bos_id()] + ids, "text": None})
        for d in dec:
            if d["text"] is None:
                d["text"] = sp.decode(d["ids"])
    out = {
        "model": name + ".model",
        "vocab_size": n,
        "ids": {"bos": sp.bos_id(), "eos": sp.eos_id(), "pad": sp.pad_id(), "unk": sp.unk_id()},
        "id_to_piece": {str(i): sp.id_to_piece(i) for i in range(min(n, 400))},
        "encode": enc,
        "decode": dec,
    }
    with open(path or os.path.join(OUT, "golden_" + name + ".json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=True, indent=0)


def variant(src: str, dst: str, rng: random.Random, tie_scores: bool, unused=True, rename=None, **normalizer):
    """A copy of a trained model with some NORMAL pieces turned UNUSED (BPE must re-split them into the
    pair that formed them, unigram must skip them) and, for BPE, scores rounded so that many different
    pairs tie (the leftmost must win). Not a model a trainer would write, but a valid ModelProto."""
    from sentencepiece import sentencepiece_model_pb2 as pb
    m = pb.ModelProto()
    with open(os.path.join(OUT, src + ".model"), "rb") as f:
        m.ParseFromString(f.read())
    normal = [i for i, p in enumerate(m.pieces) if p.type == 1 and len(p.piece) > 1]
    for i in rng.sample(normal, len(normal) // 6 if unused else 0):
        m.pieces[i].type = 5  # UNUSED
    for i, piece in (rename or {}).items():
        m.pieces[i].piece = piece
    for k, v in normalizer.items():
        if k == "treat_whitespace_as_suffix":
            m.trainer_spec.treat_whitespace_as_suffix = v
        else:
            setattr(m.normalizer_spec, k, v)
    if tie_scores:
        for p in m.pieces:
            if p.type == 1:
                p.score = float(int(p.score / 25) * 25)
    data = m.SerializeToString()
    with open(os.path.join(OUT, dst + ".model"), "wb") as f:
        f.write(data)
    return spm.SentencePieceProcessor(model_proto=data)


def pi0_prompts(model_path: str, rng: random.Random, corpus, strings, hf_dir=None, out_path=None):
    """What LeRobot 0.6.1 feeds π0: Pi0NewLineProcessor then the HF tokenizer (docs/SPEC.md §2.1).
    With `hf_dir` (e.g. the HF snapshot folder holding tokenizer.json) that tokenizer is used, as LeRobot's
    AutoTokenizer.from_pretrained does; otherwise one converted from the .model."""
    try:
        # transformers 4.x (5.x's GemmaConverter cannot convert a .model file: missing `sp` attribute).
        from transformers import AutoTokenizer, GemmaTokenizerFast
    except ImportError:
        print("transformers not installed: pi0_prompts.json not written")
        return
    if hf_dir:
        tok = AutoTokenizer.from_pretrained(hf_dir)
    else:
        tok = GemmaTokenizerFast(vocab_file=model_path)  # converts the .model (GemmaConverter), adds BOS
    sp = spm.SentencePieceProcessor(model_file=model_path)
    prompts = ["pick up the red block", "pick up the red block\n", "", "\n", " ", "stack the cups\n\n",
               "Öffne die Schublade", "ロボットは赤いブロックを拾います", "move 123 mm to the left 🤖",
               " ".join(corpus[:30]), "x" * 47, "x y " * 20, "a b c d e f g h i j k l m n o p q r s t u v w x",
               "<start_of_turn>user\nhi<end_of_turn>",
               # The HF tokenizer matches its special tokens' text inside the prompt; sentencepiece does not.
               "<bos>pick up", "say <eos> then <pad><unk>", "<bos"]
    prompts += [" ".join(rng.choice(corpus).split()[: rng.randint(1, 30)]) for _ in range(30)]
    cases = []
    agree_sp = True
    for p in prompts:
        text = p if p.endswith("\n") else p + "\n"
        r = tok(text, max_length=48, padding="max_length", padding_side="right", truncation=True)
        full = tok(text)["input_ids"]
        # Cross-check the converted fast tokenizer against the sentencepiece package itself.
        if full != [sp.bos_id()] + sp.encode(text) and not any(c in text for c in ("<bos>", "<eos>", "<pad>", "<unk>")):
            agree_sp = False
            print("HF != sentencepiece for", repr(text), full, sp.encode(text))
        cases.append({"prompt": p, "tokens": r["input_ids"], "mask": [bool(m) for m in r["attention_mask"]],
                      "truncated": len(full) > 48})
    # Where does the converted HF tokenizer differ from sentencepiece on the golden strings? (Informational.)
    differ = [t for t in strings if tok(t)["input_ids"] != [sp.bos_id()] + sp.encode(t)]
    print(f"HF fast tokenizer differs from sentencepiece on {len(differ)} of {len(strings)} golden strings")
    with open(out_path or os.path.join(OUT, "pi0_prompts.json"), "w", encoding="utf-8") as f:
        json.dump({"tokenizer": type(tok).__name__, "hf_agrees_with_sentencepiece_on_prompts": agree_sp,
                   "golden_strings_where_hf_differs": differ, "cases": cases},
                  f, ensure_ascii=True, indent=0)


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = random.Random(1234)
    corpus = corpus_lines(rng, 6000)
    bpe = train("gemma_like_bpe", corpus,
                model_type="bpe", vocab_size=1500, byte_fallback=True, split_digits=True,
                normalization_rule_name="identity", add_dummy_prefix=False, remove_extra_whitespaces=False,
                allow_whitespace_only_pieces=True, user_defined_symbols=USER_DEFINED,
                pad_id=0, eos_id=1, bos_id=2, unk_id=3,
                pad_piece="<pad>", eos_piece="<eos>", bos_piece="<bos>", unk_piece="<unk>",
                character_coverage=0.9995, max_sentence_length=100000)
    strings = golden_strings(random.Random(99), corpus)
    golden(bpe, "gemma_like_bpe", strings, random.Random(7))
    uni = train("default_unigram", corpus, vocab_size=800, max_sentence_length=100000)
    golden(uni, "default_unigram", strings, random.Random(8))
    short = [t for t in strings if len(t) < 300]
    golden(variant("gemma_like_bpe", "bpe_unused_ties", random.Random(3), True), "bpe_unused_ties", short,
           random.Random(9))
    golden(variant("default_unigram", "unigram_unused", random.Random(4), False), "unigram_unused", short,
           random.Random(10))
    # Llama-style (dummy prefix with byte fallback) and whitespace-as-suffix variants of the BPE model.
    golden(variant("gemma_like_bpe", "bpe_dummy_prefix", random.Random(0), False, unused=False,
                   add_dummy_prefix=True), "bpe_dummy_prefix", short, random.Random(11))
    golden(variant("gemma_like_bpe", "bpe_ws_suffix", random.Random(0), False, unused=False,
                   add_dummy_prefix=True, remove_extra_whitespaces=True, treat_whitespace_as_suffix=True),
           "bpe_ws_suffix", short, random.Random(12))
    # User-defined pieces spelled with literal spaces (reportedly how Gemma 3 stores its indentation pieces):
    # the normaliser turns the spaces into "▁" after matching, so sentencepiece never emits them.
    golden(variant("gemma_like_bpe", "bpe_literal_space", random.Random(0), False, unused=False,
                   rename={12: "  ", 13: "   ", 17: "<t d>"}), "bpe_literal_space",
           [t for t in short if " " in t] + ["x <t d> y", "<t d>", "a  b", "a   b"], random.Random(13))
    pi0_prompts(os.path.join(OUT, "gemma_like_bpe.model"), random.Random(5), corpus, strings)


if __name__ == "__main__":
    if len(sys.argv) in (4, 7) and sys.argv[1] == "--model":
        # --model MODEL OUT.json [--hf HF_SNAPSHOT_DIR PROMPTS.json]
        model_path, out_path = sys.argv[2], sys.argv[3]
        corpus = corpus_lines(random.Random(1234), 6000)
        strings = golden_strings(random.Random(99), corpus)
        golden(spm.SentencePieceProcessor(model_file=model_path), os.path.basename(model_path).rsplit(".", 1)[0],
               strings, random.Random(7), path=out_path)
        if len(sys.argv) == 7 and sys.argv[4] == "--hf":
            pi0_prompts(model_path, random.Random(5), corpus, strings, hf_dir=sys.argv[5], out_path=sys.argv[6])
    else:
        main()
