"""The data layer: the record contract, the dataset folder, versions, the Hub, references, import."""
