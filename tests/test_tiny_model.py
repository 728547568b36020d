"""Tiny offline Qwen-VL models (data_prep/make_tiny_model.py) and our pinned chat templates."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from model_helpers import tiny_model_dir, video_frames, video_metadata

from data_prep import make_tiny_model as mtm
from tools import protocol

REPO = Path(__file__).resolve().parent.parent
FAMILIES = ("qwen2_5_vl", "qwen3_vl")

V = "<|vision_start|><|video_pad|><|vision_end|>"
QUESTION = "\nWhen does the red square appear? Options: A. early B. late"
TOOL_TURN = (
    '<think>It may be late.</think><tool_call>{"name": "get_video_clip_frame", '
    '"arguments": [{"start_time": 4, "end_time": 8}, {"start_time": 1, "end_time": 3}]}</tool_call>'
)
ANSWER_TURN = "<think>The clip shows it late.</think><answer>B</answer>"


def _conversation(video=None) -> list[dict]:
    """system, user(video + question), assistant tool call, user(2 videos + feedback), assistant answer."""
    video = video if video is not None else "file:///v.mp4"
    return [
        {"role": "system", "content": protocol.SYSTEM_PROMPT},
        {"role": "user", "content": [{"type": "video", "video": video}, {"type": "text", "text": QUESTION}]},
        {"role": "assistant", "content": TOOL_TURN},
        {
            "role": "user",
            "content": [
                {"type": "video", "video": video},
                {"type": "video", "video": video},
                {"type": "text", "text": protocol.TOOL_SUCCESS_TEXT},
            ],
        },
        {"role": "assistant", "content": ANSWER_TURN},
    ]


def _expected_conversation() -> str:
    return (
        f"<|im_start|>system\n{protocol.SYSTEM_PROMPT}<|im_end|>\n"
        f"<|im_start|>user\n{V}{QUESTION}<|im_end|>\n"
        f"<|im_start|>assistant\n{TOOL_TURN}<|im_end|>\n"
        f"<|im_start|>user\n{V}{V}{protocol.TOOL_SUCCESS_TEXT}<|im_end|>\n"
        f"<|im_start|>assistant\n{ANSWER_TURN}<|im_end|>\n"
    )


@pytest.fixture(scope="module", params=FAMILIES)
def family(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def model_dir(family) -> Path:
    return tiny_model_dir(family)


# ---------------------------------------------------------------- tokenizer


def test_added_tokens_follow_qwen_order_and_flags(model_dir, family):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    extra = mtm.added_tokens(family)
    ids = [tok.convert_tokens_to_ids(t) for t, _ in extra]
    first = ids[0]
    assert ids == list(range(first, first + len(extra))), "added tokens must be consecutive, in Qwen's order"
    assert len(tok) == first + len(extra)
    assert [t for t, _ in extra[:3]] == ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"
    assert tok.bos_token is None
    # real offsets: <|video_pad|> = <|endoftext|> + 13, <tool_call> = + 14 (151656 / 151657 in Qwen2.5-VL)
    assert tok.convert_tokens_to_ids("<|video_pad|>") - first == 151656 - 151643
    assert tok.convert_tokens_to_ids("<tool_call>") - first == 151657 - 151643
    # each added token is one id; special ones vanish with skip_special_tokens, <tool_call> stays
    text = f"<|im_start|>assistant\n{TOOL_TURN}<|im_end|>{V}"
    enc = tok.encode(text)
    assert enc.count(tok.convert_tokens_to_ids("<tool_call>")) == 1
    assert enc.count(tok.convert_tokens_to_ids("<|video_pad|>")) == 1
    assert tok.decode(enc, skip_special_tokens=True) == f"assistant\n{TOOL_TURN}"
    assert tok.decode(enc) == text


def test_think_tokens_are_text_in_qwen2_5_and_single_in_qwen3(model_dir, family):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    pieces = tok.tokenize("<think>")
    if family == "qwen2_5_vl":
        assert len(pieces) > 1
    else:
        assert pieces == ["<think>"]


def test_bpe_covers_protocol_texts_compactly(model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    n_chars = len(protocol.SYSTEM_PROMPT)
    n_tokens = len(tok.encode(protocol.SYSTEM_PROMPT))
    assert tok.decode(tok.encode(protocol.SYSTEM_PROMPT)) == protocol.SYSTEM_PROMPT
    assert n_tokens < n_chars / 3, f"{n_tokens} tokens for {n_chars} chars: the BPE did not learn the protocol"
    assert 700 <= len(tok) <= 1100


def test_tokenizer_build_is_deterministic():
    a = mtm.build_tokenizer("qwen2_5_vl")
    b = mtm.build_tokenizer("qwen2_5_vl")
    assert a.get_vocab() == b.get_vocab()
    assert a.backend_tokenizer.to_str() == b.backend_tokenizer.to_str()


# ---------------------------------------------------------------- config, weights, loading


def test_config_token_ids_match_tokenizer(model_dir, family):
    from transformers import AutoConfig, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    cfg = AutoConfig.from_pretrained(model_dir)
    assert cfg.model_type == family
    for field, value in mtm.vision_token_ids(tok).items():
        assert getattr(cfg, field) == value, field
    assert cfg.text_config.vocab_size == len(tok)
    assert cfg.text_config.hidden_size == 128 and cfg.text_config.num_hidden_layers == 2
    # vLLM CPU attention needs a supported head_dim (64 here)
    assert cfg.text_config.head_dim == 64 and cfg.text_config.hidden_size // cfg.text_config.num_attention_heads == 64
    assert cfg.text_config.num_attention_heads == 2 and cfg.text_config.num_key_value_heads == 1
    assert cfg.text_config.rope_parameters["mrope_section"] == [8, 12, 12]
    assert cfg.vision_config.depth == 2 and cfg.vision_config.out_hidden_size == 128
    assert cfg.vision_config.patch_size == (14 if family == "qwen2_5_vl" else 16)
    if family == "qwen2_5_vl":
        assert cfg.vision_config.tokens_per_second == 2


def test_generation_config_suppresses_vision_tokens(model_dir):
    from transformers import AutoTokenizer, GenerationConfig

    tok = AutoTokenizer.from_pretrained(model_dir)
    gen = GenerationConfig.from_pretrained(model_dir)
    vision_ids = sorted(tok.convert_tokens_to_ids(t) for t in mtm.VISION_TOKENS)
    assert sorted(gen.suppress_tokens) == vision_ids
    assert sorted(i for (i,) in gen.bad_words_ids) == vision_ids
    assert gen.eos_token_id == [tok.convert_tokens_to_ids("<|im_end|>"), tok.convert_tokens_to_ids("<|endoftext|>")]


def test_loads_with_auto_classes_and_verl(model_dir, family):
    from transformers import AutoModelForImageTextToText, AutoProcessor
    from verl.utils.tokenizer import hf_processor, hf_tokenizer

    processor = AutoProcessor.from_pretrained(model_dir)
    expected = {"qwen2_5_vl": "Qwen2_5_VLProcessor", "qwen3_vl": "Qwen3VLProcessor"}[family]
    assert type(processor).__name__ == expected
    assert processor.chat_template == mtm.chat_template_path(family).read_text()
    vproc = hf_processor(str(model_dir))
    assert type(vproc).__name__ == expected and callable(vproc.get_rope_index)
    vtok = hf_tokenizer(str(model_dir))
    assert vtok.pad_token_id == vtok.convert_tokens_to_ids("<|endoftext|>")
    model = AutoModelForImageTextToText.from_pretrained(model_dir)
    assert sum(p.numel() for p in model.parameters()) < 1_000_000


def test_same_seed_same_weights_other_seed_differs(tmp_path):
    from safetensors.torch import load_file

    a = load_file(mtm.build_tiny_model(tmp_path / "a", seed=3) / "model.safetensors")
    b = load_file(mtm.build_tiny_model(tmp_path / "b", seed=3) / "model.safetensors")
    c = load_file(mtm.build_tiny_model(tmp_path / "c", seed=4) / "model.safetensors")
    assert a.keys() == b.keys() == c.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)
    assert (tmp_path / "a" / "tokenizer.json").read_bytes() == (tmp_path / "b" / "tokenizer.json").read_bytes()
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")], "temporary dirs left behind"


def test_generation_never_emits_vision_tokens(model_dir):
    from transformers import AutoModelForImageTextToText, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForImageTextToText.from_pretrained(model_dir).eval()
    vision_ids = {tok.convert_tokens_to_ids(t) for t in mtm.VISION_TOKENS}
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "What happens?"}], add_generation_prompt=True, tokenize=False
    )
    ids = tok(prompt, return_tensors="pt").input_ids.repeat(2, 1)
    # a +20 logit bias makes an unsuppressed model emit nothing but vision tokens
    bias = {(i,): 20.0 for i in vision_ids}
    torch.manual_seed(0)
    out = model.generate(ids, max_new_tokens=16, min_new_tokens=16, do_sample=True, sequence_bias=bias)
    new = out[:, ids.shape[1] :]
    assert new.shape == (2, 16)
    assert not vision_ids & set(new.flatten().tolist())


# ---------------------------------------------------------------- chat templates


def test_qwen2_5_vl_template_renders_protocol_exactly():
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir("qwen2_5_vl"))
    text = tok.apply_chat_template(_conversation(), tokenize=False)
    assert text == _expected_conversation()
    # no system message: the stock default system prompt; generation prompt appended
    short = tok.apply_chat_template(
        [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Q?"}]}],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert short == (
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
        f"<|im_start|>user\n{V}Q?<|im_end|>\n<|im_start|>assistant\n"
    )
    images = tok.apply_chat_template(
        [{"role": "user", "content": [{"type": "image"}, {"type": "image_url", "image_url": "x"}]}],
        tokenize=False,
        add_vision_id=True,
    )
    assert images.endswith(
        "<|im_start|>user\nPicture 1: <|vision_start|><|image_pad|><|vision_end|>"
        "Picture 2: <|vision_start|><|image_pad|><|vision_end|><|im_end|>\n"
    )


def test_template_is_prefix_stable():
    """Appending a turn only appends text (verl tokenizes new turns by diffing renders)."""
    from transformers import AutoTokenizer

    for family in FAMILIES:
        tok = AutoTokenizer.from_pretrained(tiny_model_dir(family))
        conv = _conversation()
        for k in range(1, len(conv)):
            head = tok.apply_chat_template(conv[:k], tokenize=False)
            assert tok.apply_chat_template(conv[: k + 1], tokenize=False).startswith(head)


def test_qwen3_vl_template_renders_protocol_without_default_system():
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir("qwen3_vl"))
    assert tok.apply_chat_template(_conversation(), tokenize=False) == _expected_conversation()
    short = tok.apply_chat_template(
        [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Q?"}]}],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert short == f"<|im_start|>user\n{V}Q?<|im_end|>\n<|im_start|>assistant\n"


def _videos():
    """Main video (8 frames 56x84) and two clips (4 frames 112x112 and 6 frames 56x56), with metadata."""
    shapes = [(8, 56, 84), (4, 112, 112), (6, 56, 56)]
    return [(video_frames(t, h, w, seed=i), video_metadata(t, fps=2.0)) for i, (t, h, w) in enumerate(shapes)]


def test_qwen2_5_vl_processor_expands_video_pads_per_video():
    from verl.utils.tokenizer import build_multimodal_processor_inputs, hf_processor

    processor = hf_processor(str(tiny_model_dir("qwen2_5_vl")))
    text = processor.apply_chat_template(_conversation(), tokenize=False)
    videos = _videos()
    out = build_multimodal_processor_inputs(processor, text=[text], videos=videos)
    grid = out["video_grid_thw"]
    merge = processor.video_processor.merge_size
    counts = [int(g.prod()) // merge**2 for g in grid]
    # smart_resize to multiples of 28 within [3136, 12845056] px: 56x84 -> 2x3 merged patches, T 8 -> 4
    assert grid.tolist() == [[4, 4, 6], [2, 8, 8], [3, 4, 4]]
    assert counts == [24, 32, 12]
    ids = out["input_ids"][0].tolist()
    vs, ve, vp = (
        processor.tokenizer.convert_tokens_to_ids(t) for t in ("<|vision_start|>", "<|vision_end|>", "<|video_pad|>")
    )
    starts = [i for i, x in enumerate(ids) if x == vs]
    ends = [i for i, x in enumerate(ids) if x == ve]
    assert [e - s - 1 for s, e in zip(starts, ends)] == counts
    assert all(ids[s + 1 : e] == [vp] * (e - s - 1) for s, e in zip(starts, ends))
    assert out["second_per_grid_ts"].tolist() == [1.0, 1.0, 1.0]  # temporal patch 2 / sampled fps 2
    assert out["pixel_values_videos"].shape[0] == int(grid.prod(dim=1).sum())


def test_qwen2_5_vl_forward_on_processed_video():
    from transformers import AutoModelForImageTextToText
    from verl.utils.tokenizer import build_multimodal_processor_inputs, hf_processor

    model_dir = tiny_model_dir("qwen2_5_vl")
    processor = hf_processor(str(model_dir))
    model = AutoModelForImageTextToText.from_pretrained(model_dir).eval()
    text = processor.apply_chat_template(_conversation(), tokenize=False)
    inputs = build_multimodal_processor_inputs(processor, text=[text], videos=_videos())
    inputs.pop("mm_token_type_ids", None)
    with torch.no_grad():
        logits = model(**inputs).logits
    assert logits.shape == (1, inputs["input_ids"].shape[1], len(processor.tokenizer))
    assert torch.isfinite(logits).all()


def test_qwen3_vl_processor_expands_video_with_timestamps():
    from verl.utils.tokenizer import build_multimodal_processor_inputs, hf_processor

    processor = hf_processor(str(tiny_model_dir("qwen3_vl")))
    text = processor.apply_chat_template(_conversation(), tokenize=False)
    videos = [(video_frames(8, 64, 96), video_metadata(8, fps=2.0))]
    first_turn_only = text.split("<|im_start|>assistant")[0]
    out = build_multimodal_processor_inputs(processor, text=[first_turn_only], videos=videos)
    grid = out["video_grid_thw"][0].tolist()
    assert grid == [4, 4, 6]  # 64x96 at patch 16; 8 frames / temporal patch 2
    ids = out["input_ids"][0].tolist()
    vp = processor.tokenizer.convert_tokens_to_ids("<|video_pad|>")
    assert ids.count(vp) == 4 * (4 * 6 // 4)
    decoded = processor.tokenizer.decode(ids)
    # one "<t seconds>" per temporal patch: frames (0,1) -> 0.25 s, (2,3) -> 1.25 s, ...
    for stamp in ("<0.2 seconds>", "<1.2 seconds>", "<2.2 seconds>", "<3.2 seconds>"):
        assert stamp in decoded


# ---------------------------------------------------------------- CLI


def test_cli_help_runs_as_script_from_another_cwd(tmp_path):
    # the packages come from the project's editable install; PYTHONPATH stands in for installing this checkout
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    res = subprocess.run(
        [sys.executable, str(REPO / "data_prep" / "make_tiny_model.py"), "--help"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert "--family" in res.stdout and "qwen3_vl" in res.stdout and "--seed" in res.stdout


def test_cli_main_writes_model(tmp_path, capsys):
    assert mtm.main([str(tmp_path / "m"), "--family", "qwen2_5_vl", "--seed", "1"]) == 0
    cfg = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg["model_type"] == "qwen2_5_vl"
    assert "wrote tiny qwen2_5_vl model" in capsys.readouterr().out


def test_unknown_family_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="family must be one of"):
        mtm.build_tiny_model(tmp_path / "x", "llava")  # type: ignore[arg-type]
