"""Build a tiny random-weight Qwen2.5-VL or Qwen3-VL model directory, fully offline.

    python data_prep/make_tiny_model.py /tmp/tiny_qwen2_5_vl
    python -m data_prep.make_tiny_model /tmp/tiny_qwen3_vl --family qwen3_vl

The directory loads with ``transformers`` Auto classes (AutoTokenizer, AutoProcessor, AutoConfig,
AutoModelForImageTextToText) and with verl's ``hf_tokenizer`` / ``hf_processor``. It is meant for CPU
tests and demos of the whole pipeline (dataset -> agent loop -> reward -> actor forward):

- tokenizer: a byte-level BPE (about 1,000 tokens) trained here on the protocol texts, JSON tool calls,
  digits, answer letters and some English, using Qwen2's pre-tokenizer; then the Qwen special tokens
  in Qwen2.5-VL's order (``<|endoftext|>``, ``<|im_start|>``, ``<|im_end|>`` ... ``<|video_pad|>``,
  then the non-special ``<tool_call>``, ``</tool_call>``, fim tokens; Qwen3-VL also adds
  ``<tool_response>``, ``</tool_response>``, ``<think>``, ``</think>``). As in Qwen2.5-VL,
  ``<think>``/``<answer>`` are ordinary text there.
- processor: the real Qwen image and video processors with the real models' pixel limits, and our
  chat template (``recipe/videotemp_o3/config/<family>_chat_template.jinja``).
- model config: the real config class, shrunk (text hidden 64, 2 layers, 4 heads, 2 KV heads,
  mRoPE section [2, 3, 3]; ViT depth 2, hidden 32, out hidden 64), token ids matching the tokenizer.
- ``generation_config.json``: EOS ``<|im_end|>``/``<|endoftext|>`` and ``bad_words_ids`` plus
  ``suppress_tokens`` for the vision special tokens, because a random model would otherwise emit
  ``<|image_pad|>`` and friends, which break mRoPE position computation downstream.

Everything is seeded: the same ``seed`` gives byte-identical tokenizer files and identical weights.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Literal

from tools import protocol
from tools.cli import ArgumentParser

Family = Literal["qwen2_5_vl", "qwen3_vl"]
FAMILIES: tuple[str, ...] = ("qwen2_5_vl", "qwen3_vl")

CONFIG_DIR = Path(__file__).resolve().parent.parent / "recipe" / "videotemp_o3" / "config"

BPE_VOCAB_SIZE = 1000

# Qwen2.5-VL's added tokens, in id order (real ids 151643 ... 151664). The first block is special
# (removed by skip_special_tokens), the second is not (survives decoding, as in the real tokenizer).
SPECIAL_TOKENS: tuple[str, ...] = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)
NON_SPECIAL_TOKENS: tuple[str, ...] = (
    "<tool_call>",
    "</tool_call>",
    "<|fim_prefix|>",
    "<|fim_middle|>",
    "<|fim_suffix|>",
    "<|fim_pad|>",
    "<|repo_name|>",
    "<|file_sep|>",
)
# Qwen3's tokenizer adds these as single (non-special) tokens; Qwen2.5-VL splits them into pieces.
QWEN3_EXTRA_TOKENS: tuple[str, ...] = ("<tool_response>", "</tool_response>", "<think>", "</think>")

# Tokens a generating model must never emit (they are inserted by the processor only).
VISION_TOKENS: tuple[str, ...] = (
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

_ENGLISH = (
    "The video shows a person walking into a kitchen and opening the fridge.",
    "What happens after the man puts the cup on the table?",
    "Which colour is the car that appears at the beginning of the video?",
    "A red square appears in the middle of the frame for a few seconds.",
    "Answer with the option's letter from the given choices directly.",
    "Give the start and end time of the event in seconds.",
    "Options: A. a dog B. a cat C. a bird D. a horse E. nothing",
    "I need to look at the segment between these two moments more closely.",
    "The clip confirms that the event happens near the end of the video.",
    "First, I will locate the relevant part of the video, then answer the question.",
    "the a an and or of to in on at for with from by is are was were be this that it",
    "video clip frame time second minute start end event person object scene answer question",
)


def _training_corpus() -> list[str]:
    """Texts the mini BPE is trained on: everything the tests and demos tokenize most."""
    texts = [
        protocol.SYSTEM_PROMPT,
        protocol.TOOL_SUCCESS_TEXT,
        protocol.TOOL_FAILURE_TEXT,
        protocol.NO_TIMESTAMP_ERROR,
        protocol.BAD_JSON_ERROR,
        protocol.WRONG_TOOL_ERROR,
        protocol.NO_VALID_RANGE_ERROR,
        protocol.feedback_text([protocol.ClipRange(1.5, 12.25)], caption=True),
        *_ENGLISH,
    ]
    for i in range(40):
        start, end = 3 * i, 3 * i + 7 + (i % 5)
        texts.append(
            f'<think>The event is around {start} seconds.</think><tool_call>{{"name": "{protocol.TOOL_NAME}", '
            f'"arguments": [{{"start_time": {start}, "end_time": {end}}}]}}</tool_call>'
        )
        texts.append(f"<think>The clip shows it.</think><answer>{'ABCDE'[i % 5]}</answer>")
        texts.append(f"<answer>[{start}.{i % 10}, {end}.{(i * 7) % 10}]</answer>")
        texts.append(protocol.user_prompt(f"Question {i}: what happens at {start} seconds?"))
    texts.append(" ".join(str(n) for n in range(200)))
    texts.append(" ".join("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"))
    return texts


def _train_bpe(vocab_size: int) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Train a byte-level BPE with Qwen2's pre-tokenizer; return (vocab, merges)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        special_tokens=[],
        show_progress=False,
    )
    tok.train_from_iterator(_training_corpus(), trainer=trainer)
    model = json.loads(tok.to_str())["model"]
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return dict(model["vocab"]), merges


def added_tokens(family: Family) -> tuple[tuple[str, bool], ...]:
    """(token, is_special) for every added token of ``family``, in id order."""
    tokens = [(t, True) for t in SPECIAL_TOKENS] + [(t, False) for t in NON_SPECIAL_TOKENS]
    if family == "qwen3_vl":
        tokens += [(t, False) for t in QWEN3_EXTRA_TOKENS]
    return tuple(tokens)


def chat_template_path(family: Family) -> Path:
    """Our chat template file for ``family``."""
    return CONFIG_DIR / f"{family}_chat_template.jinja"


def build_tokenizer(family: Family = "qwen2_5_vl", vocab_size: int = BPE_VOCAB_SIZE):
    """A ``Qwen2Tokenizer`` over a freshly trained mini BPE plus the Qwen added tokens (ids after the BPE)."""
    from tokenizers import AddedToken
    from transformers import Qwen2Tokenizer

    vocab, merges = _train_bpe(vocab_size)
    extra = added_tokens(family)
    for token, _ in extra:  # ids continue after the BPE vocabulary, in Qwen's order
        vocab[token] = len(vocab)
    tokenizer = Qwen2Tokenizer(
        vocab=vocab,
        merges=merges,
        unk_token=None,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=131072,
        errors="replace",
    )
    tokenizer.add_tokens([AddedToken(t, special=True, normalized=False) for t, s in extra if s], special_tokens=True)
    tokenizer.add_tokens([AddedToken(t, special=False, normalized=False) for t, s in extra if not s])
    for token, _ in extra:
        got = tokenizer.convert_tokens_to_ids(token)
        if got != vocab[token]:
            raise RuntimeError(f"added token {token!r} got id {got}, expected {vocab[token]}")
    tokenizer.chat_template = chat_template_path(family).read_text()
    return tokenizer


def vision_token_ids(tokenizer) -> dict[str, int]:
    """Ids of the vision special tokens, keyed by the config field names that hold them."""
    ids = {
        "vision_start_token_id": tokenizer.convert_tokens_to_ids("<|vision_start|>"),
        "vision_end_token_id": tokenizer.convert_tokens_to_ids("<|vision_end|>"),
        "image_token_id": tokenizer.convert_tokens_to_ids("<|image_pad|>"),
        "video_token_id": tokenizer.convert_tokens_to_ids("<|video_pad|>"),
    }
    return ids


def _suppressed_ids(tokenizer) -> list[int]:
    return [tokenizer.convert_tokens_to_ids(t) for t in VISION_TOKENS]


def _build_processor(family: Family, tokenizer):
    from transformers import Qwen2VLImageProcessor

    template = chat_template_path(family).read_text()
    if family == "qwen2_5_vl":
        from transformers import Qwen2_5_VLProcessor, Qwen2VLVideoProcessor

        # Qwen2.5-VL-7B-Instruct's preprocessor_config: patch 14, merge 2, 3,136 .. 12,845,056 pixels
        # (size passed explicitly: min/max_pixels kwargs would mutate the class-level default dict).
        size = {"shortest_edge": 3136, "longest_edge": 12845056}
        image_processor = Qwen2VLImageProcessor(size=dict(size), patch_size=14, temporal_patch_size=2, merge_size=2)
        video_processor = Qwen2VLVideoProcessor(size=dict(size), patch_size=14, temporal_patch_size=2, merge_size=2)
        return Qwen2_5_VLProcessor(
            image_processor=image_processor,
            video_processor=video_processor,
            tokenizer=tokenizer,
            chat_template=template,
        )
    from transformers import Qwen3VLProcessor, Qwen3VLVideoProcessor

    # Qwen3-VL: patch 16, mean/std 0.5; pixel limits of the released processor configs.
    image_processor = Qwen2VLImageProcessor(
        size={"shortest_edge": 65536, "longest_edge": 16777216},
        patch_size=16,
        temporal_patch_size=2,
        merge_size=2,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )
    video_processor = Qwen3VLVideoProcessor(
        size={"shortest_edge": 4096, "longest_edge": 25165824}, patch_size=16, temporal_patch_size=2, merge_size=2
    )
    return Qwen3VLProcessor(
        image_processor=image_processor, video_processor=video_processor, tokenizer=tokenizer, chat_template=template
    )


def _build_config(family: Family, tokenizer):
    """The real config class for ``family``, shrunk, with token ids taken from ``tokenizer``."""
    ids = vision_token_ids(tokenizer)
    eos_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    pad_id = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    text = dict(
        vocab_size=len(tokenizer),
        # head_dim 64 (hidden 128 / 2 heads): vLLM's CPU attention supports head_dim in {32, 64, 80, ...}
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=64,
        max_position_embeddings=32768,
        bos_token_id=pad_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )
    if family == "qwen2_5_vl":
        from transformers import Qwen2_5_VLConfig

        text["rope_parameters"] = {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [8, 12, 12]}
        vision = dict(
            depth=2,
            hidden_size=32,
            intermediate_size=64,
            num_heads=2,
            out_hidden_size=128,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
            tokens_per_second=2,
            window_size=56,
            fullatt_block_indexes=[1],
        )
        return Qwen2_5_VLConfig(text_config=text, vision_config=vision, **ids)
    from transformers import Qwen3VLConfig

    text["rope_parameters"] = {
        "rope_type": "default",
        "rope_theta": 5000000.0,
        "mrope_section": [8, 12, 12],
        "mrope_interleaved": True,
    }
    vision = dict(
        depth=2,
        hidden_size=32,
        intermediate_size=64,
        num_heads=2,
        out_hidden_size=128,
        patch_size=16,
        spatial_merge_size=2,
        temporal_patch_size=2,
        deepstack_visual_indexes=[1],
    )
    return Qwen3VLConfig(text_config=text, vision_config=vision, **ids)


def _model_class(family: Family):
    if family == "qwen2_5_vl":
        from transformers import Qwen2_5_VLForConditionalGeneration

        return Qwen2_5_VLForConditionalGeneration
    from transformers import Qwen3VLForConditionalGeneration

    return Qwen3VLForConditionalGeneration


def build_tiny_model(out_dir: str | os.PathLike, family: Family = "qwen2_5_vl", *, seed: int = 0) -> Path:
    """Write a tiny random-weight ``family`` model directory to ``out_dir`` and return its path.

    The directory is written next to ``out_dir`` first and renamed into place, so a reader never
    sees half a model; an existing ``out_dir`` is replaced.
    """
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    import torch
    from transformers import GenerationConfig

    out = Path(out_dir).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(family)
    processor = _build_processor(family, tokenizer)
    config = _build_config(family, tokenizer)

    torch.manual_seed(seed)
    model = _model_class(family)(config).to(torch.float32).eval()
    suppressed = _suppressed_ids(tokenizer)
    eos_ids = [tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.convert_tokens_to_ids("<|endoftext|>")]
    model.generation_config = GenerationConfig(
        bos_token_id=eos_ids[1],
        eos_token_id=eos_ids,
        pad_token_id=eos_ids[1],
        bad_words_ids=[[i] for i in suppressed],
        suppress_tokens=suppressed,
    )

    from tools.files import atomic_write_dir, remove_stale_temps

    def fill(tmp: Path) -> None:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)  # also writes the tokenizer files and chat_template.jinja

    remove_stale_temps(out.parent)  # folders left by a killed run
    return atomic_write_dir(out, fill)


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(
        description="Build a tiny random-weight Qwen-VL model directory (offline) for CPU tests and demos."
    )
    parser.add_argument("out_dir", help="directory to write (replaced if it exists)")
    parser.add_argument(
        "--family",
        choices=FAMILIES,
        default="qwen2_5_vl",
        help="model family: qwen2_5_vl (Qwen2.5-VL, patch 14) or qwen3_vl (Qwen3-VL, patch 16); default qwen2_5_vl",
    )
    parser.add_argument("--seed", type=int, default=0, help="torch seed for the random weights (default 0)")
    args = parser.parse_args(argv)
    out = build_tiny_model(args.out_dir, args.family, seed=args.seed)
    print(f"wrote tiny {args.family} model to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
