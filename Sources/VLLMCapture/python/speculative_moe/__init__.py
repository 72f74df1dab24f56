"""speculative-moe Python side (placeholder)."""
