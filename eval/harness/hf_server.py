"""An LLM server client backed by a ``transformers`` model (CPU or one GPU).

It has verl's ``LLMServerClient.generate`` signature, so the real ``AgentLoopWorker`` and our agent
loop can run against it without vLLM: tests, the ``transformers`` eval engine and the CPU demo.

Per request it rebuilds the vision inputs exactly as verl's trainer does (the model's processor on
the images and the ``(frames, metadata)`` videos, ``do_sample_frames=False``), checks that the prompt
holds as many image and video placeholder tokens as the processor produces, lets the model compute
its MRoPE positions from both, and samples. Log-probs are ``log_softmax(logits / temperature)`` of the raw logits (``temperature`` 0:
the raw logits), the quantity the actor recomputes when it runs at the rollout temperature.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any, Callable, Optional

import torch
from transformers import StoppingCriteria, StoppingCriteriaList
from verl.utils.tokenizer import build_multimodal_processor_inputs, get_processor_token_id
from verl.workers.rollout.replica import TokenOutput
from verl.workers.rollout.utils import get_vision_placeholder_token_ids


class _StopOnStrings(StoppingCriteria):
    """Stop once the generated text contains one of ``stops`` (batch size 1)."""

    def __init__(self, tokenizer: Any, stops: list[str], prompt_len: int):
        self.tokenizer = tokenizer
        self.stops = stops
        self.prompt_len = prompt_len

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: Any) -> torch.BoolTensor:
        text = self.tokenizer.decode(input_ids[0, self.prompt_len :], skip_special_tokens=False)
        done = any(stop in text for stop in self.stops)
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)


_VISION_KEYS = ("pixel_values", "image_grid_thw", "pixel_values_videos", "video_grid_thw", "second_per_grid_ts")


def vision_inputs(
    processor: Any,
    image_data: list[Any] | None = None,
    video_data: list[tuple[torch.Tensor, dict]] | None = None,
) -> dict[str, torch.Tensor]:
    """The processor's vision tensors for images and videos, in one call as verl's ``_compute_multi_modal_inputs``.

    Images give ``pixel_values``/``image_grid_thw``; videos ``pixel_values_videos``/``video_grid_thw``
    (and ``second_per_grid_ts`` for Qwen2.5-VL). The text is only placeholders.
    """
    if not image_data and not video_data:
        return {}
    image_pad = getattr(processor, "image_token", "<|image_pad|>")
    video_pad = getattr(processor, "video_token", "<|video_pad|>")
    text = "".join(f"<|vision_start|>{image_pad}<|vision_end|>" for _ in image_data or [])
    text += "".join(f"<|vision_start|>{video_pad}<|vision_end|>" for _ in video_data or [])
    out = build_multimodal_processor_inputs(
        processor,
        text=[text],
        images=list(image_data) if image_data else None,
        videos=list(video_data) if video_data else None,
    )
    result = {}
    for key in _VISION_KEYS:
        if key in out and out[key] is not None:
            value = out[key]
            result[key] = value if isinstance(value, torch.Tensor) else torch.tensor(value)
    return result


def video_inputs(processor: Any, video_data: list[tuple[torch.Tensor, dict]] | None) -> dict[str, torch.Tensor]:
    """``pixel_values_videos``, ``video_grid_thw`` (and ``second_per_grid_ts`` for Qwen2.5-VL) of the videos."""
    return vision_inputs(processor, None, video_data)


def image_inputs(processor: Any, image_data: list[Any] | None) -> dict[str, torch.Tensor]:
    """``pixel_values`` and ``image_grid_thw`` of the images."""
    return vision_inputs(processor, image_data, None)


def video_token_count(processor: Any, video_grid_thw: torch.Tensor) -> int:
    """Number of video placeholder tokens the grids expand to (``prod(thw) // merge**2`` summed)."""
    merge = int(getattr(processor.video_processor, "merge_size", 2))
    return int((video_grid_thw.prod(dim=-1) // (merge * merge)).sum().item())


def image_token_count(processor: Any, image_grid_thw: torch.Tensor) -> int:
    """Number of image placeholder tokens the grids expand to (``prod(thw) // merge**2`` summed)."""
    merge = int(getattr(processor.image_processor, "merge_size", 2))
    return int((image_grid_thw.prod(dim=-1) // (merge * merge)).sum().item())


class HFServerClient:
    """``generate()`` like verl's ``LLMServerClient`` on a local ``transformers`` model (text, images, videos).

    Args:
        model: a Qwen2.5-VL / Qwen3-VL ``*ForConditionalGeneration`` (eval mode is set here).
        processor: its processor (tokenizer inside).
        default_max_tokens: new tokens per request when ``sampling_params`` has no ``max_tokens``.
        seed: base seed; request k samples with seed ``seed + k`` (or ``sampling_params["seed"]``)
            inside a forked RNG, so runs are reproducible and the caller's RNG is untouched.
        force: optional ``(request_id, turn) -> text | None``; a text is not sampled but scored
            (teacher forcing: its tokens, closed with ``<|im_end|>``, with the model's log-probs), to
            steer a random model into tool calls while keeping real log-probs.

    Requests run one at a time in a worker thread (the event loop is never blocked).
    """

    def __init__(
        self,
        model: Any,
        processor: Any,
        *,
        default_max_tokens: int = 512,
        seed: int = 0,
        force: Optional[Callable[[str, int], Optional[str]]] = None,
    ):
        self.model = model.eval()
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.default_max_tokens = default_max_tokens
        self.seed = seed
        self.video_token_id = get_processor_token_id(processor, "video")
        self.image_token_id = get_processor_token_id(processor, "image")
        # Never sample an image/video placeholder (nothing stands behind it), as verl's vLLM server bans
        # them. The log-probs stay those of the unmasked logits: the quantity the actor recomputes.
        self.banned_token_ids = get_vision_placeholder_token_ids(processor)
        self._lock = threading.Lock()
        self._requests = 0
        self.force = force
        self._turns: dict[str, int] = {}
        self.calls: list[dict[str, Any]] = []  # one record per request: inspection in tests

    @classmethod
    def from_pretrained(
        cls, model_path: str, *, device: str = "cpu", dtype: torch.dtype = torch.float32, **kwargs: Any
    ) -> "HFServerClient":
        """Load the model and processor from a local directory."""
        from transformers import AutoModelForImageTextToText, AutoProcessor

        processor = AutoProcessor.from_pretrained(model_path)
        model = AutoModelForImageTextToText.from_pretrained(model_path, dtype=dtype).to(device)
        return cls(model, processor, **kwargs)

    async def generate(
        self,
        request_id: str,
        *,
        prompt_ids: list[int],
        sampling_params: dict[str, Any],
        image_data: Optional[list[Any]] = None,
        video_data: Optional[list[Any]] = None,
        audio_data: Optional[list[Any]] = None,
        mm_processor_kwargs: Optional[dict[str, Any]] = None,
        **kwargs: Any,
    ) -> TokenOutput:
        """Generate one continuation of ``prompt_ids`` (see the class docstring)."""
        if audio_data:
            raise ValueError("HFServerClient serves text, image and video prompts; audio_data is not supported")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            None,
            lambda: self._generate_sync(request_id, list(prompt_ids), dict(sampling_params), video_data, image_data),
        )

    def _generate_sync(
        self,
        request_id: str,
        prompt_ids: list[int],
        params: dict[str, Any],
        video_data: Optional[list[Any]],
        image_data: Optional[list[Any]] = None,
    ) -> TokenOutput:
        with self._lock:
            request_index = self._requests
            self._requests += 1
            device = next(self.model.parameters()).device
            inputs = self.model_inputs(prompt_ids, video_data, image_data=image_data, device=device)
            prompt_len = len(prompt_ids)

            temperature = float(params.get("temperature", 1.0) or 0.0)
            max_tokens = int(params.get("max_tokens") or self.default_max_tokens)
            stops = [s for s in (params.get("stop") or []) if s]
            eos = set(_as_list(self.model.generation_config.eos_token_id))
            eos.update(_as_list(self.tokenizer.convert_tokens_to_ids("<|im_end|>")))
            eos.update(params.get("stop_token_ids") or [])
            gen_kwargs: dict[str, Any] = dict(
                max_new_tokens=max_tokens,
                eos_token_id=sorted(eos),
                pad_token_id=self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else min(eos),
                output_logits=True,
                return_dict_in_generate=True,
                repetition_penalty=float(params.get("repetition_penalty", 1.0) or 1.0),
            )
            if self.banned_token_ids:
                gen_kwargs["suppress_tokens"] = list(self.banned_token_ids)
            if temperature > 0:
                top_k = int(params.get("top_k", -1) or -1)
                gen_kwargs.update(
                    do_sample=True,
                    temperature=temperature,
                    top_p=float(params.get("top_p", 1.0) or 1.0),
                    top_k=top_k if top_k > 0 else 0,
                )
            else:
                gen_kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            if stops:
                gen_kwargs["stopping_criteria"] = StoppingCriteriaList(
                    [_StopOnStrings(self.tokenizer, stops, inputs["input_ids"].shape[1])]
                )

            turn = self._turns.get(request_id, 0)
            self._turns[request_id] = turn + 1
            forced = self.force(request_id, turn) if self.force is not None else None
            if forced is not None:
                return self._score_forced(
                    request_id, prompt_ids, video_data, forced, temperature, max_tokens, params, image_data=image_data
                )

            seed = int(params.get("seed", self.seed + request_index))
            with torch.random.fork_rng(devices=[] if device.type == "cpu" else [device]), torch.no_grad():
                torch.manual_seed(seed)
                if hasattr(self.model, "model") and hasattr(self.model.model, "rope_deltas"):
                    self.model.model.rope_deltas = None  # stale deltas from the previous request
                out = self.model.generate(**inputs, **gen_kwargs)

            new_tokens = out.sequences[0, inputs["input_ids"].shape[1] :].tolist()
            steps = torch.stack([logits[0] for logits in out.logits[: len(new_tokens)]]).float()
            if temperature > 0:
                steps = steps / temperature
            logprobs = torch.log_softmax(steps, dim=-1)
            token_logprobs = logprobs[torch.arange(len(new_tokens)), torch.tensor(new_tokens)].tolist()
            # generate() pads finished rows; with batch size 1 nothing follows the stop token.
            self.calls.append(
                {
                    "request_id": request_id,
                    "prompt_len": prompt_len,
                    "n_videos": len(video_data or []),
                    "n_images": len(image_data or []),
                    "max_tokens": max_tokens,
                    "n_new": len(new_tokens),
                    "seed": seed,
                }
            )
            return TokenOutput(
                token_ids=new_tokens,
                log_probs=token_logprobs if params.get("logprobs") else None,
                stop_reason="completed",
                extra_fields={},
            )

    def _score_forced(
        self,
        request_id: str,
        prompt_ids: list[int],
        video_data: Optional[list[Any]],
        text: str,
        temperature: float,
        max_tokens: int,
        params: dict[str, Any],
        *,
        image_data: Optional[list[Any]] = None,
    ) -> TokenOutput:
        """Tokens of ``text`` (+ ``<|im_end|>``) with their log-probs under the model (one forward).

        A ``stop`` string in ``text`` ends it there (kept, no ``<|im_end|>``), as in sampling.
        """
        end = [self.tokenizer.convert_tokens_to_ids("<|im_end|>")]
        for stop in params.get("stop") or []:
            at = text.find(stop) if stop else -1
            if at >= 0:
                text, end = text[: at + len(stop)], []
                break
        tokens = (self.tokenizer.encode(text, add_special_tokens=False) + end)[:max_tokens]
        logprobs = self.sequence_logprobs(
            prompt_ids, tokens, video_data, image_data=image_data, temperature=temperature
        )
        self.calls.append(
            {
                "request_id": request_id,
                "prompt_len": len(prompt_ids),
                "n_videos": len(video_data or []),
                "n_images": len(image_data or []),
                "max_tokens": max_tokens,
                "n_new": len(tokens),
                "seed": None,
            }
        )
        return TokenOutput(
            token_ids=tokens, log_probs=logprobs if params.get("logprobs") else None, stop_reason="completed"
        )

    def sequence_logprobs(
        self,
        prompt_ids: list[int],
        token_ids: list[int],
        video_data: Optional[list[Any]],
        *,
        image_data: Optional[list[Any]] = None,
        temperature: float = 1.0,
    ) -> list[float]:
        """Log-probs of ``token_ids`` following ``prompt_ids`` (teacher forcing, one forward pass)."""
        device = next(self.model.parameters()).device
        inputs = self.model_inputs(list(prompt_ids) + list(token_ids), video_data, image_data=image_data, device=device)
        with torch.no_grad():
            if hasattr(self.model, "model") and hasattr(self.model.model, "rope_deltas"):
                self.model.model.rope_deltas = None
            logits = self.model(**inputs).logits[0].float()
        steps = logits[len(prompt_ids) - 1 : len(prompt_ids) - 1 + len(token_ids)]
        if temperature > 0:
            steps = steps / temperature
        logprobs = torch.log_softmax(steps, dim=-1)
        return logprobs[torch.arange(len(token_ids)), torch.tensor(token_ids)].tolist()

    def model_inputs(
        self,
        prompt_ids: list[int],
        video_data: Optional[list[Any]],
        *,
        image_data: Optional[list[Any]] = None,
        device: Any = "cpu",
    ) -> dict[str, torch.Tensor]:
        """Model kwargs for ``prompt_ids`` + images + videos: ids, mask, ``mm_token_type_ids`` and vision tensors.

        Raises ValueError when the prompt's image or video placeholder count differs from what the
        processor produces for the images or videos (a rollout/trainer misalignment).
        """
        input_ids = torch.tensor([prompt_ids], dtype=torch.long)
        inputs: dict[str, torch.Tensor] = {
            "input_ids": input_ids,
            "attention_mask": torch.ones_like(input_ids),
        }
        vision = vision_inputs(self.processor, image_data, video_data)
        checks = (
            ("video", self.video_token_id, video_data, "video_grid_thw", video_token_count),
            ("image", self.image_token_id, image_data, "image_grid_thw", image_token_count),
        )
        for kind, token_id, media, grid_key, count in checks:
            n_pad = int((input_ids == token_id).sum().item()) if token_id is not None else 0
            expected = count(self.processor, vision[grid_key]) if grid_key in vision else 0
            if n_pad != expected:
                raise ValueError(
                    f"prompt has {n_pad} {kind} placeholder tokens but the processor produces {expected} "
                    f"for the {len(media or [])} {kind}(s)"
                )
        inputs.update(vision)
        mm_types = torch.zeros_like(input_ids)
        if self.image_token_id is not None:
            mm_types[input_ids == self.image_token_id] = 1
        if self.video_token_id is not None:
            mm_types[input_ids == self.video_token_id] = 2
        inputs["mm_token_type_ids"] = mm_types
        return {k: v.to(device) for k, v in inputs.items()}


def _as_list(value: Any) -> list[int]:
    if value is None:
        return []
    if isinstance(value, (list, tuple, set)):
        return [int(v) for v in value if v is not None]
    return [int(value)]
