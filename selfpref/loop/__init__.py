"""The self-alignment loop (`iterate`) and the demo that tells the whole story."""
