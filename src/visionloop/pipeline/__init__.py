"""The loop's automation: pipeline steps, trigger policy (pure), the pipeline lock and the agent."""
