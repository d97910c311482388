"""PPO (Schulman et al. 2017) and PPO-EWMA (Hilton et al. 2021) from scratch in PyTorch."""
