"""Training a network on the Beam job's records: flags, the training step, losses, callbacks, strategies, one run."""
