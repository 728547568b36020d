"""NExT-GQA (grounded QA), read from the eval's annotation format: several evidence spans per question allowed.

Official sources: doc-doc/NExT-GQA ``test.csv``, ``gsub_test.json`` (evidence spans), ``map_vid_vidorID.json``
(NExT-QA video paths); 591 of 5,553 test questions have several spans (IoU = best over them).
"""

from eval.tasks.annotations import grounded_qa_task

HUB = {
    "official": "doc-doc/NExT-GQA test.csv + gsub_test.json + map_vid_vidorID.json; NExT-QA videos",
    "converted_to": "annotations.jsonl",
}
TASKS = [grounded_qa_task("nextgqa", 80, HUB, "NExT-GQA grounded QA")]
