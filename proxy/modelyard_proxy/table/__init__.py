"""The routing table's life in a proxy: the store, file follow, standalone manifests and the admin push port."""
