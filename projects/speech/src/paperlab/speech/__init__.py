"""Speech emotion recognition from log-mel spectrograms with CNNs (AESDD: Vryzas et al. 2018/2020;
RAVDESS: Livingstone & Russo 2018), evaluated speaker-independently, with SpecAugment (Park et al. 2019)."""
