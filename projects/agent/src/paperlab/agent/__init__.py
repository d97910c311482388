"""An LLM agent framework: plan, act (ReAct), reflect (Reflexion); sandboxed tools; memory; an offline harness."""
