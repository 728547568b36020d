"""Charades-STA (sentence grounding), read from the eval's annotation format (:mod:`eval.tasks.annotations`).

Official sources: ``charades_sta_test.txt`` (``VID start end##sentence``), ``Charades_v1_test.csv``
(durations), videos ``Charades_v1/<VID>.mp4``; a converter writes ``annotations.jsonl``.
"""

from eval.tasks.annotations import grounding_task

HUB = {
    "repo_id": "lmms-lab/charades_sta",
    "repo_type": "dataset",
    "official": "charades_sta_test.txt + Charades_v1_test.csv; videos Charades_v1_480 (AI2)",
    "converted_to": "annotations.jsonl",
}
TASKS = [
    grounding_task(
        "charades_sta", 60, HUB, "Charades-STA sentence grounding", ("a red square appears", "a blue square appears")
    )
]
