"""DDPM (Ho et al. 2020) and DDIM sampling (Song et al. 2021) with a U-Net written from scratch."""
