"""1-Lipschitz networks on CIFAR-10: spectral normalisation and Björck orthogonalisation (written here),
GroupSort, l2-norm pooling, hKR / hinge / tempered CE losses, l2 certification and attacks, with
deel-torchlip as the peer."""
