"""Group-equivariant CNNs: C_n lifting/group convolutions (Cohen & Welling 2016) and steerable SO(2)
convolutions with a circular-harmonic basis (Worrall et al. 2017; Weiler & Cesa 2019)."""
