"""studies: searches and studies made of many comparisons (search, optimizers, ablation)."""
