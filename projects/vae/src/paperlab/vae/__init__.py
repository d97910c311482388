"""VAE (Kingma & Welling 2013, arXiv 1312.6114) and VQ-VAE (van den Oord et al. 2017, arXiv 1711.00937)."""
