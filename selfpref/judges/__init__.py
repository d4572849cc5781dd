"""Pairwise judges: one verdict interface for the self-judge, the dispute filter and eval."""
