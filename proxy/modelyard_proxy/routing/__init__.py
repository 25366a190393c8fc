"""Resilience for the relay: target health, balancing, retry and fallback policy, deadlines, hedging, faults.

Every module is free of aiohttp request handling, so each can be unit-tested on its own with a fake clock.
"""
