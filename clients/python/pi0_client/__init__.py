"""Clients for `pi0 serve` (PI0-Swift's openpi-compatible policy server).

`AsyncActionChunkBroker` is a drop-in replacement for openpi_client's `ActionChunkBroker`: it hands out
one action per control step without blocking while the next chunk is computed, measures the inference
delay in control steps, and sends the real-time chunking fields (`rtc_prev_chunk`,
`rtc_inference_delay`, `rtc_execution_horizon`) so the server guides the next chunk onto the actions
the robot is still executing (docs/RTC.md, docs/SERVER.md in the PI0-Swift repository).
"""
from .broker import AsyncActionChunkBroker, BrokerStats

__all__ = ["AsyncActionChunkBroker", "BrokerStats"]
