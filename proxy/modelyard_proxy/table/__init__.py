"""The routing table's life in a proxy: the store every request reads, file follow and standalone manifests."""
