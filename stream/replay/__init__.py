"""Replay: evaluate a model on a recorded range of the input topic, or republish that range.

``python -m stream.replay evaluate`` rebuilds every stream's windows from the input topic with the
processor's own ``BatchStep``, scores a model artifact and joins the result with the recorded
predictions; ``python -m stream.replay republish`` copies a range to another topic so a pipeline
can be re-driven from history. Pure scoring lives in ``evaluate``, Kafka reading in ``reader``.
"""
