"""Rebuild `tiny-tokenizer/`: a 1,024-token byte-level BPE for the built-in tiny test model.

Trained on the bundled ScienceQA sample so that test prompts tokenize compactly. The committed
files were trained on an earlier 48-item sample; rebuilding from today's bundle gives a slightly
different vocabulary (no test depends on the exact tokens). Run it from the
repository root: `python unisd_core/modeling_configs/build_tiny_tokenizer.py`. The output is
deterministic for the same inputs and library version, and it is committed.
"""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

HERE = Path(__file__).parent
BUNDLED = HERE.parent / "data" / "bundled"
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
# ChatML, as SmolLM2 and Qwen use, so prompts look the same shape on the tiny and real models.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def corpus() -> list[str]:
    texts: list[str] = []
    for path in sorted((BUNDLED / "scienceqa").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            texts.extend(str(v) for v in json.loads(line).values() if isinstance(v, str))
    return texts


def main() -> None:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=1024,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(corpus(), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        chat_template=CHAT_TEMPLATE,
    )
    fast.save_pretrained(HERE / "tiny-tokenizer")


if __name__ == "__main__":
    main()
