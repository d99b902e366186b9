"""Registrations of fa2jit with other libraries, each imported on its own (fa2jit.integrations.transformers)."""
