"""Reference neural-network building blocks in plain PyTorch (the specification of every kernel)."""
