"""RLHF on a causal language model: reward model (TRL), PPO with a KL penalty, RLOO/GRPO, over-optimisation."""
