"""Failures: how an upstream's error becomes the gateway's answer, the same way for every provider.

Providers read the error out of their native body, routing injects rehearsed outages, and the relay
decides whether to try again; all three share this one classification, so it sits below them.
"""
