"""recipe/videotemp_o3/sft_dataset.py on parquet from prepare_sft: last-two-rounds loss mask, video placement,
video metadata reaching the processor."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
from data_helpers import sft_row, synthetic_dataset, write_jsonl
from model_helpers import tiny_model_dir

from data_prep import prepare_sft
from recipe.videotemp_o3.sft_dataset import VideoTempSFTDataset, trainable_assistant_indices
from tools.video_io import sample_clip

PIXELS = 12_544  # 112 x 112 area: small frames keep the test fast


@pytest.fixture(scope="module")
def model():
    from verl.utils import hf_processor, hf_tokenizer

    path = str(tiny_model_dir())
    return hf_tokenizer(path), hf_processor(path)


@pytest.fixture(scope="module")
def parquet(tmp_path_factory):
    """Rows with 1, 2 and 3 assistant turns (0, 1 and 2 tool calls): ranges, then derived clips."""
    data = synthetic_dataset()
    video = data.videos[0].path
    rows = [
        sft_row(video, []),
        sft_row(video, [(1.0, 4.0)]),
        sft_row(video, [(0.5, 6.0), (2.0, 3.5)]),
        sft_row(video, [(0.5, 6.0), (2.0, 3.5)], clips="derive"),
    ]
    tmp = tmp_path_factory.mktemp("sft")
    rc = prepare_sft.main(
        [
            str(write_jsonl(tmp / "in.jsonl", rows)),
            "--video-root",
            str(data.root),
            "--output-dir",
            str(tmp / "out"),
            "--min-pixels",
            str(PIXELS),
            "--max-pixels",
            str(PIXELS),
            "--no-progress",
        ]
    )
    assert rc == 0
    return tmp / "out" / "train.parquet"


def _dataset(parquet: Path, model, **overrides) -> VideoTempSFTDataset:
    import verl
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(Path(verl.__file__).parent / "trainer" / "config" / "sft_trainer_engine.yaml").data
    cfg.max_length = 65536
    cfg.enable_thinking_default = None
    for key, value in overrides.items():
        cfg[key] = value
    tokenizer, processor = model
    return VideoTempSFTDataset(str(parquet), tokenizer, cfg, processor)


def _turns(ids: list[int], tokenizer) -> list[tuple[str, int, int]]:
    """(role, first token, end) of every ``<|im_start|>role\\n ... <|im_end|>\\n`` block."""
    start_id = tokenizer.convert_tokens_to_ids("<|im_start|>")
    starts = [i for i, t in enumerate(ids) if t == start_id] + [len(ids)]
    turns = []
    for a, b in zip(starts, starts[1:]):
        role = tokenizer.decode(ids[a + 1 : a + 4]).split("\n")[0]
        turns.append((role, a, b))
    return turns


def _expected_mask(ids: list[int], tokenizer, last_n: int) -> torch.Tensor:
    """Ones on the last ``last_n`` assistant blocks, after their ``<|im_start|>assistant\\n`` header."""
    header = len(tokenizer.encode("<|im_start|>assistant\n", add_special_tokens=False))
    assistant = [(a, b) for role, a, b in _turns(ids, tokenizer) if role == "assistant"]
    mask = torch.zeros(len(ids), dtype=torch.long)
    for a, b in assistant if last_n <= 0 else assistant[-last_n:]:
        mask[a + header : b] = 1
    return mask


def test_trainable_indices_rule():
    msgs = [{"role": r} for r in ["system", "user", "assistant", "user", "assistant", "user", "assistant"]]
    assert trainable_assistant_indices(msgs, 2) == {4, 6}
    assert trainable_assistant_indices(msgs[:5], 2) == {2, 4}
    assert trainable_assistant_indices(msgs[:3], 2) == {2}
    assert trainable_assistant_indices(msgs, 0) == {2, 4, 6}
    assert trainable_assistant_indices(msgs, 1) == {6}


@pytest.mark.parametrize("row, n_assistant", [(0, 1), (1, 2), (2, 3)])
def test_loss_mask_covers_exactly_the_last_two_assistant_turns(parquet, model, row, n_assistant):
    tokenizer, _ = model
    dataset = _dataset(parquet, model)
    item = dataset[row]
    ids = item["input_ids"].tolist()
    mask = item["loss_mask"]
    assert sum(role == "assistant" for role, _, _ in _turns(ids, tokenizer)) == n_assistant
    assert torch.equal(mask.long(), _expected_mask(ids, tokenizer, 2))
    trained = tokenizer.decode([t for t, m in zip(ids, mask.tolist()) if m])
    messages = pd.read_parquet(parquet).iloc[row]["messages"]
    answers = [m["content"] for m in messages if m["role"] == "assistant"]
    assert trained == "".join(f"{text}<|im_end|>\n" for text in answers[-2:])
    if n_assistant == 3:
        assert "call 0" not in trained and "call 1" in trained


def test_last_n_is_configurable(parquet, model):
    tokenizer, _ = model
    for last_n in (0, 1):
        item = _dataset(parquet, model, train_last_n_assistant_turns=last_n)[2]
        ids = item["input_ids"].tolist()
        assert torch.equal(item["loss_mask"].long(), _expected_mask(ids, tokenizer, last_n))


@pytest.mark.parametrize("row", [2, 3])
def test_videos_land_in_their_turns_with_metadata(parquet, model, row):
    tokenizer, processor = model
    data = synthetic_dataset()
    item = _dataset(parquet, model)[row]
    ids = item["input_ids"].tolist()
    mm = item["multi_modal_inputs"]
    videos = pd.read_parquet(parquet).iloc[row]["videos"]
    grid = mm["video_grid_thw"]
    assert grid.shape == (len(videos), 3) == (3, 3)

    pad = tokenizer.convert_tokens_to_ids("<|video_pad|>")
    runs, k = [], 0
    while k < len(ids):  # (start, length) of each run of video pad tokens
        if ids[k] == pad:
            j = k
            while j < len(ids) and ids[j] == pad:
                j += 1
            runs.append((k, j - k))
            k = j
        else:
            k += 1
    merge = processor.video_processor.merge_size
    assert [n for _, n in runs] == [int(g.prod()) // merge**2 for g in grid]
    turns = _turns(ids, tokenizer)
    owners = [next(i for i, (_, a, b) in enumerate(turns) if a <= start < b) for start, _ in runs]
    assert owners == [1, 3, 5]  # first user turn, then the feedback turn after each tool call
    assert all(turns[i][0] == "user" for i in owners)

    main = str(data.root / data.videos[0].path)
    for (start, end), g in zip([(0.5, 6.0), (2.0, 3.5)], grid[1:]):
        expected = sample_clip(main, start, end, min_pixels=PIXELS, max_pixels=PIXELS)
        assert int(g[0]) * 2 == expected.frames.shape[0]
    # metadata reached the processor: 2 fps sampling gives 1 s per temporal patch (not 2 / 24 fps)
    assert mm["second_per_grid_ts"][0].item() == pytest.approx(1.0)
    assert item["position_ids"].shape == (4, len(ids))


def test_vision_tower_freeze_keeps_merger_and_llm_trainable(parquet, model):
    from transformers import AutoModelForImageTextToText
    from verl.workers.engine.fsdp.transformer_impl import FSDPEngine

    from recipe.videotemp_o3.verl_hooks import freeze_vision_tower, install_vision_tower_freeze

    net = AutoModelForImageTextToText.from_pretrained(str(tiny_model_dir()))
    visual = {n for n, _ in net.named_parameters() if ".visual." in f".{n}"}
    frozen_count = freeze_vision_tower(net)
    trainable = {n for n, p in net.named_parameters() if p.requires_grad}
    assert frozen_count > 0
    assert {n for n in visual if "merger" not in n}.isdisjoint(trainable)
    assert {n for n in visual if "merger" in n} <= trainable
    assert any("lm_head" in n or "embed_tokens" in n for n in trainable)

    original = FSDPEngine._build_module
    unwrapped = getattr(original, "__wrapped__", original)  # importing verl_hooks installs the hook
    try:
        FSDPEngine._build_module = unwrapped
        _dataset(parquet, model, freeze_vision_tower=True)
        patched = FSDPEngine._build_module
        assert patched is not unwrapped and patched._freezes_vision_tower and patched.__wrapped__ is unwrapped
        install_vision_tower_freeze()
        assert FSDPEngine._build_module is patched  # idempotent

        # the hook freezes whatever the engine builds
        fresh = AutoModelForImageTextToText.from_pretrained(str(tiny_model_dir()))
        FSDPEngine._build_module = lambda self: fresh
        install_vision_tower_freeze()
        built = FSDPEngine._build_module(None)
        assert built is fresh
        assert {n for n, p in built.named_parameters() if not p.requires_grad} == {
            n for n in visual if "merger" not in n
        }
    finally:
        FSDPEngine._build_module = original


def test_recipe_config_composes_with_reference_hyper_parameters():
    from hydra import compose, initialize_config_dir
    from verl.utils.import_utils import load_extern_object

    config_dir = str(Path(__file__).resolve().parent.parent / "recipe" / "videotemp_o3" / "config")
    with initialize_config_dir(config_dir=config_dir, version_base=None):
        cfg = compose(config_name="videotemp_o3_sft", overrides=["data.train_files=x.parquet"])
    assert (cfg.optim.lr, cfg.data.train_batch_size, cfg.trainer.total_epochs) == (1e-5, 256, 3)
    assert cfg.trainer.n_gpus_per_node == 8 and cfg.engine.strategy == "fsdp2"
    assert cfg.data.train_last_n_assistant_turns == 2 and cfg.data.freeze_vision_tower is True
    assert load_extern_object(cfg.data.custom_cls.path, cfg.data.custom_cls.name) is VideoTempSFTDataset
    assert cfg.model.path == "Qwen/Qwen2.5-VL-7B-Instruct"
