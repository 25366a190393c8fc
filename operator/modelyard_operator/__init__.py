"""The Modelyard operator: watches ModelRoutes, ProviderCredentials, ModelConsumers, their Secrets and the
proxy pods, compiles one routing table, delivers it to every proxy, and reports in each object's status what
is live (and, for consumers, what they spent).
"""
