"""Production monitoring: per-prediction statistics and embeddings, windows, drift tests against the
training data's reference, live accuracy on reviewed production samples, alerts, and the signals
that hand drift and degradation to the agent."""
