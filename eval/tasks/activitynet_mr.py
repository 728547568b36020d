"""ActivityNet-MR (ActivityNet Captions moment retrieval), read from the eval's annotation format.

Official sources: ActivityNet Captions ``val_2.json`` / ``test.json`` (one query per sentence); videos
``v_xxx.{mp4,mkv,webm}``; a converter writes ``annotations.jsonl``.
"""

from eval.tasks.annotations import grounding_task

HUB = {
    "official": "ActivityNet Captions val_2.json / test.json; videos v_<id>.{mp4,mkv,webm}",
    "converted_to": "annotations.jsonl",
}
TASKS = [
    grounding_task(
        "activitynet_mr",
        70,
        HUB,
        "ActivityNet Captions moment retrieval",
        ("the red square is visible", "the blue square is visible"),
    )
]
