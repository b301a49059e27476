"""Asynchronous execution of action chunks with real-time chunking (RTC).

Timeline, with H the chunk length, h the execution horizon and d the measured delay (control steps):

    chunk k:      a0 a1 ... a(h-1) | a(h) ... a(h+d-1) | ...
                  executed            executed while chunk k+1 is computed
    request k+1:  sent after h actions of chunk k, with rtc_prev_chunk = chunk k's unexecuted rows
                  a(h) ... a(H-1), rtc_inference_delay = d, rtc_execution_horizon = h
    chunk k+1:    its first d rows are guided onto a(h) ... a(h+d-1); when it arrives after s steps, the
                  broker continues from its row s, so the robot never waits and never jumps.

`infer(obs)` is called once per control step (as with openpi's ActionChunkBroker) and never blocks,
except for the very first chunk or when a chunk runs out before the next one arrives (a "stall",
counted in the stats: make h smaller or the control period longer).
"""
from __future__ import annotations

import dataclasses
import threading
import time
from typing import Dict, List, Optional

import numpy as np
from openpi_client import base_policy as _base_policy


@dataclasses.dataclass
class BrokerStats:
    """What the broker measured: per request the delay in control steps and the latency in seconds."""

    delays: List[int] = dataclasses.field(default_factory=list)
    latencies_s: List[float] = dataclasses.field(default_factory=list)
    stalls: int = 0
    requests: int = 0


class AsyncActionChunkBroker(_base_policy.BasePolicy):
    """Returns one action per `infer` call while the next chunk is requested in the background.

    Args:
        policy: the inner policy, e.g. `websocket_client_policy.WebsocketClientPolicy`.
        action_horizon: rows of each chunk to use (the server's `action_horizon`, 50 for pi0).
        execution_horizon: actions executed from a chunk before the next one is requested (h).
        rtc: send the real-time chunking fields; without them the server answers as openpi's does.
        initial_delay: the delay estimate (control steps) for the first guided request.
        action_key: the result field that holds the chunk.
    """

    def __init__(self, policy: _base_policy.BasePolicy, action_horizon: int, execution_horizon: int = 10,
                 rtc: bool = True, initial_delay: int = 0, action_key: str = "actions"):
        if not 1 <= execution_horizon <= action_horizon:
            raise ValueError(f"execution_horizon must be in 1..{action_horizon}, got {execution_horizon}")
        self._policy = policy
        self._horizon = action_horizon
        self._execution_horizon = execution_horizon
        self._rtc = rtc
        self._delay_estimate = max(0, int(initial_delay))
        self._key = action_key
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self.stats = BrokerStats()
        self._reset_state()

    def _reset_state(self) -> None:
        self._chunk: Optional[Dict] = None     # the result whose actions are being executed
        self._step = 0                          # next row of the current chunk
        self._pending: Optional[Dict] = None   # a finished result not yet switched to
        self._pending_error: Optional[BaseException] = None
        self._in_flight = False
        self._steps_since_request = 0
        self._request_time = 0.0

    # -- the control loop's side ---------------------------------------------------------------
    def infer(self, obs: Dict) -> Dict:  # noqa: D401  (openpi's BasePolicy signature)
        with self._lock:
            if self._chunk is None:
                self._chunk = self._policy.infer(obs)   # first chunk: nothing to execute yet, so wait
                self._step = 0
                self.stats.requests += 1
            self._switch_if_arrived()
            while self._step >= self._rows():           # ran out before the next chunk arrived
                if not self._in_flight and self._pending is None:
                    self._start_request(obs)
                self.stats.stalls += 1
                while self._pending is None and self._pending_error is None:
                    self._arrived.wait()
                self._switch_if_arrived()
            result = {k: (v[self._step, ...] if isinstance(v, np.ndarray) and v.ndim >= 1 and k == self._key else v)
                      for k, v in self._chunk.items()}
            self._step += 1
            if self._in_flight:
                self._steps_since_request += 1
            if not self._in_flight and self._pending is None and self._step >= self._execution_horizon:
                self._start_request(obs)
            return result

    def reset(self) -> None:
        with self._lock:
            while self._in_flight:
                self._arrived.wait()
            self._policy.reset()
            self._reset_state()

    # -- internals -------------------------------------------------------------------------------
    def _rows(self) -> int:
        return min(self._horizon, int(np.asarray(self._chunk[self._key]).shape[0]))

    def _switch_if_arrived(self) -> None:
        if self._pending_error is not None:
            err, self._pending_error = self._pending_error, None
            raise err
        if self._pending is None:
            return
        elapsed = self._steps_since_request
        self._chunk, self._pending = self._pending, None
        # The new chunk starts where the request was made; `elapsed` of its rows are already in the past.
        self._step = min(elapsed, self._rows() - 1)
        self.stats.delays.append(elapsed)
        self._delay_estimate = elapsed

    def _start_request(self, obs: Dict) -> None:
        request = dict(obs)
        remaining = np.asarray(self._chunk[self._key])[self._step:self._rows()]
        if self._rtc and len(remaining) > 0:
            delay = min(self._delay_estimate, self._horizon - 1)
            request["rtc_prev_chunk"] = np.ascontiguousarray(remaining, dtype=np.float32)
            request["rtc_inference_delay"] = int(delay)
            request["rtc_execution_horizon"] = int(self._execution_horizon)
        self._in_flight = True
        self._steps_since_request = 0
        self._request_time = time.monotonic()
        self.stats.requests += 1
        threading.Thread(target=self._run, args=(request,), daemon=True).start()

    def _run(self, request: Dict) -> None:
        try:
            result = self._policy.infer(request)
            error = None
        except BaseException as e:  # delivered to the control loop's next infer()
            result, error = None, e
        with self._lock:
            self.stats.latencies_s.append(time.monotonic() - self._request_time)
            self._pending, self._pending_error = result, error
            self._in_flight = False
            self._arrived.notify_all()


def boundary_jumps(executed: np.ndarray, switch_steps: List[int]) -> np.ndarray:
    """|a_t − a_{t−1}| (max over dimensions) at each step where a new chunk took over."""
    return np.array([np.abs(executed[t] - executed[t - 1]).max() for t in switch_steps if 0 < t < len(executed)])

