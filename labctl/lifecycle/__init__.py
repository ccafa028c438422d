"""A lab's life: the Lab model, up/down/status, its state on disk."""
