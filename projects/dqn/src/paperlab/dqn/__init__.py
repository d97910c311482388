"""DQN (Mnih et al. 2013/2015) and Munchausen-DQN (Vieillard et al. 2020) in PyTorch.

Modules: ``config`` (the typed hyperparameters), ``envs`` (CartPole and MinAtar), ``networks``,
``replay`` (a preallocated buffer), ``targets`` (the DQN, Double-DQN and Munchausen targets),
``train`` (the one training loop with checkpoints), ``evaluate``, ``render`` (GIFs), ``bench``
(throughput and profile) and ``report`` (tables and plots from committed metrics).
"""
