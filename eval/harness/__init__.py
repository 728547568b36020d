"""Running the recipe's agent loop outside training: through verl's real ``AgentLoopWorker`` in this
process (:mod:`.local_rollout`), with a local ``transformers`` model (:mod:`.hf_server`) or scripted turns
(:mod:`.scripted_server`) as the LLM server. Used by the evaluation engines and the tests; verl never
loads these modules.
"""
