"""ReXTime (grounded QA, val split), read from the eval's annotation format.

Official sources: the ReXTime release (``question``, ``options[4]``, ``ans``, ``span``, ``vid``); videos are
QVHighlights clips and ActivityNet videos; the official eval takes the GT window with the best IoU.
"""

from eval.tasks.annotations import grounded_qa_task

HUB = {
    "official": "ReXTime val json (question, options, ans, span, vid); QVHighlights + ActivityNet videos",
    "converted_to": "annotations.jsonl",
}
TASKS = [grounded_qa_task("rextime", 90, HUB, "ReXTime grounded QA (val)")]
