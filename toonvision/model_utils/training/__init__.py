"""training: a configuration (data) becomes a compiled model, trained on one run's split."""
