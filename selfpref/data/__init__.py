"""The data layer (DESIGN.md): the record contract, the dataset folder, the Hub, and imports."""
