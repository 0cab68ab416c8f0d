"""A CLIP byte-level BPE tokenizer generated locally, for the tiny test checkpoints.

Nothing can be downloaded, so the vocabulary is built here the way CLIP's was: the 256 byte
symbols, the same symbols closing a word (``</w>``), then merges learned by plain BPE on a small
built-in corpus of prompt words, then the two special tokens. The result is a real
``CLIPTokenizer`` (same normaliser, pre-tokeniser and padding to 77) with a tiny vocabulary.
"""

from collections import Counter

from transformers import CLIPTokenizer

# Words of the kind prompts use; BPE merges are learned on them so that common words become one
# token, as with the real tokenizer (it only changes which ids a prompt maps to, never correctness).
_CORPUS = (
    "a an the is are on in of with and at by man woman car jeep dog cat panda raccoon bear horse "
    "skiing surfing moving running riding walking dancing jumping driving playing road beach snow "
    "desert sea water mountain city street forest sky sunset night style cartoon painting photo "
    "iron spider super sports red blue green yellow white black ball scene video clip render tone"
).split()
NUM_MERGES = 160


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible map from bytes to printable unicode characters."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    codes = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, codes), strict=True))


def _learn_merges(words: list[str], num_merges: int) -> list[tuple[str, str]]:
    """Plain BPE: repeatedly merge the most frequent adjacent pair (ties broken by the pair)."""
    byte_map = _bytes_to_unicode()
    vocab = Counter()
    for word in words:
        symbols = [byte_map[b] for b in word.encode("utf-8")]
        symbols[-1] += "</w>"
        vocab[tuple(symbols)] += 1
    merges = []
    for _ in range(num_merges):
        pairs = Counter()
        for symbols, count in vocab.items():
            for pair in zip(symbols, symbols[1:], strict=False):
                pairs[pair] += count
        if not pairs:
            break
        best = min(pairs, key=lambda p: (-pairs[p], p))
        merges.append(best)
        merged = Counter()
        for symbols, count in vocab.items():
            out, i = [], 0
            while i < len(symbols):
                if i + 1 < len(symbols) and (symbols[i], symbols[i + 1]) == best:
                    out.append(symbols[i] + symbols[i + 1])
                    i += 2
                else:
                    out.append(symbols[i])
                    i += 1
            merged[tuple(out)] += count
        vocab = merged
    return merges


def build_clip_tokenizer(model_max_length: int = 77) -> CLIPTokenizer:
    """Return a CLIP tokenizer with a locally generated vocabulary (deterministic)."""
    symbols = list(_bytes_to_unicode().values())
    merges = _learn_merges(_CORPUS, NUM_MERGES)
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {tok: i for i, tok in enumerate(dict.fromkeys(tokens))}
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=model_max_length)
