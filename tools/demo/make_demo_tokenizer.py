"""Train the bundled demo checkpoint's tokenizer: a 1024-piece SentencePiece BPE model with Gemma's
trainer settings (byte fallback, split digits, identity normalisation, no dummy prefix, pad/eos/bos/unk =
0/1/2/3), so that the demo's vocabulary (1024) covers every id. Not PaliGemma's tokenizer.

    /work/venvs/sp/bin/python tools/demo/make_demo_tokenizer.py Sources/pi0/Resources/DemoCheckpoint/tokenizer.model
"""
import io
import itertools
import random
import sys

import sentencepiece as spm

objects = ["cube", "bowl", "plate", "towel", "cup", "block", "drawer", "lid", "sponge", "bottle", "mug", "box"]
colors = ["red", "blue", "green", "black", "white", "yellow", "orange", "purple"]
verbs = ["pick up", "place", "put", "move", "open", "close", "fold", "push", "stack", "transfer", "insert", "grasp"]
places = ["on the plate", "in the bowl", "on the table", "in the drawer", "to the left", "to the right", "into the box"]
random.seed(0)
lines = []
for v, c, o, p in itertools.product(verbs, colors, objects, places):
    if random.random() < 0.25:
        lines.append(f"{v} the {c} {o} {p}\n")
lines += [f"step {i}: move arm {i % 7} by {i * 3} degrees\n" for i in range(300)]
model = io.BytesIO()
spm.SentencePieceTrainer.train(
    sentence_iterator=iter(lines), model_writer=model, vocab_size=1024, model_type="bpe",
    byte_fallback=True, split_digits=True, normalization_rule_name="identity", add_dummy_prefix=False,
    remove_extra_whitespaces=False, allow_whitespace_only_pieces=True, user_defined_symbols=["\n"],
    pad_id=0, eos_id=1, bos_id=2, unk_id=3, character_coverage=1.0, hard_vocab_limit=False)
open(sys.argv[1], "wb").write(model.getvalue())
sp = spm.SentencePieceProcessor(model_file=sys.argv[1])
print("vocab", sp.vocab_size(), "ids", sp.encode("pick up the red cube and place it in the blue bowl\n"))
