"""Training: tasks (what a batch is and how a model predicts), the seeded, resumable training loop, checkpoints."""
