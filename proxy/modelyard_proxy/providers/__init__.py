"""Translation between the client's wire schema and each upstream's, one package per (ingress, egress) pair."""
