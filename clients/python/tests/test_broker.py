"""Unit tests of AsyncActionChunkBroker with a scripted inner policy (no server needed).

    python -m pytest clients/python/tests        # or: python clients/python/tests/test_broker.py
"""
import os
import sys
import threading
import time
import unittest

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from pi0_client import AsyncActionChunkBroker  # noqa: E402


class ScriptedPolicy:
    """Chunk k holds 1000·k + row in every dimension; each call takes `latency` seconds."""

    def __init__(self, horizon=8, dim=2, latency=0.0):
        self.horizon, self.dim, self.latency = horizon, dim, latency
        self.requests = []
        self.lock = threading.Lock()

    def infer(self, obs):
        with self.lock:
            k = len(self.requests)
            self.requests.append(obs)
        time.sleep(self.latency)
        rows = np.arange(self.horizon, dtype=np.float32)[:, None] + 1000 * k
        return {"actions": np.repeat(rows, self.dim, axis=1), "policy_timing": {"infer_ms": 1.0}}

    def reset(self):
        pass


def settle(broker, timeout=5.0):
    """Waits until no request is in flight (the background thread has delivered its result)."""
    deadline = time.monotonic() + timeout
    while broker._in_flight and time.monotonic() < deadline:
        time.sleep(0.002)


class BrokerTests(unittest.TestCase):
    def test_synchronous_inner_policy_switches_after_the_execution_horizon(self):
        policy = ScriptedPolicy(horizon=8)
        broker = AsyncActionChunkBroker(policy, action_horizon=8, execution_horizon=3)
        got = []
        for t in range(9):
            got.append(float(broker.infer({"t": t})["actions"][0]))
            settle(broker)     # the background request finishes within this control period
        # chunk 0 rows 0,1,2; the request goes out after row 2 with rows 3… as the previous chunk; it
        # arrives before the next step, so no step has passed: the next chunk starts at its row 0,
        # which stands where chunk 0's row 3 stood.
        self.assertEqual(got[:6], [0, 1, 2, 1000, 1001, 1002])
        self.assertEqual(got[6], 2000.0)
        second = policy.requests[1]
        np.testing.assert_array_equal(second["rtc_prev_chunk"][:, 0], np.arange(3, 8, dtype=np.float32))
        self.assertEqual(second["rtc_execution_horizon"], 3)
        self.assertEqual(second["rtc_inference_delay"], 0)   # the initial estimate
        self.assertEqual(policy.requests[2]["rtc_inference_delay"], broker.stats.delays[0])
        self.assertEqual(broker.stats.stalls, 0)
        self.assertEqual(policy.requests[0], {"t": 0})    # the first request carries no RTC fields

    def test_control_loop_runs_on_while_the_next_chunk_is_computed(self):
        """Deterministic: the inner policy is held until the test releases it; meanwhile every infer()
        returns (a blocked call would hang and fail the watchdog), and the new chunk is entered at the
        row that matches the steps executed in between, which is also the next request's delay."""
        gate, held = threading.Event(), []

        class Gated(ScriptedPolicy):
            def infer(self, obs):
                if "rtc_prev_chunk" in obs:
                    held.append(obs)
                    gate.wait(10)
                return super().infer(obs)

        policy = Gated(horizon=20)
        broker = AsyncActionChunkBroker(policy, action_horizon=20, execution_horizon=4, initial_delay=2)
        done = threading.Event()

        def loop():
            for _ in range(4 + 6):                      # rows 0..3, request, 6 more rows while held
                broker.infer({})
            done.set()

        threading.Thread(target=loop, daemon=True).start()
        self.assertTrue(done.wait(5), "infer() blocked while the next chunk was being computed")
        self.assertEqual(held[0]["rtc_inference_delay"], 2)
        np.testing.assert_array_equal(held[0]["rtc_prev_chunk"][:, 0], np.arange(4, 20, dtype=np.float32))
        gate.set()
        settle(broker)
        self.assertEqual(float(broker.infer({})["actions"][0]), 1006.0)   # 6 steps had passed
        self.assertEqual(broker.stats.delays, [6])
        self.assertEqual(broker.stats.stalls, 0)

    def test_without_rtc_requests_carry_only_the_observation(self):
        policy = ScriptedPolicy(horizon=6)
        broker = AsyncActionChunkBroker(policy, action_horizon=6, execution_horizon=2, rtc=False)
        for _ in range(5):
            broker.infer({"x": 1})
            settle(broker)
        self.assertTrue(all(r == {"x": 1} for r in policy.requests))

    def test_stall_when_the_chunk_runs_out(self):
        policy = ScriptedPolicy(horizon=4, latency=0.1)
        broker = AsyncActionChunkBroker(policy, action_horizon=4, execution_horizon=4)
        values = [float(broker.infer({})["actions"][0]) for _ in range(6)]
        self.assertEqual(values[:4], [0, 1, 2, 3])
        self.assertGreaterEqual(values[4], 1000)
        self.assertGreaterEqual(broker.stats.stalls, 1)

    def test_errors_of_the_background_request_reach_the_control_loop(self):
        class Failing(ScriptedPolicy):
            def infer(self, obs):
                if "rtc_prev_chunk" in obs:
                    raise RuntimeError("server said no")
                return super().infer(obs)
        broker = AsyncActionChunkBroker(Failing(horizon=4), action_horizon=4, execution_horizon=1)
        broker.infer({})
        settle(broker)
        with self.assertRaisesRegex(RuntimeError, "server said no"):
            for _ in range(4):
                broker.infer({})
                settle(broker)

    def test_bad_arguments(self):
        with self.assertRaises(ValueError):
            AsyncActionChunkBroker(ScriptedPolicy(), action_horizon=8, execution_horizon=0)
        with self.assertRaises(ValueError):
            AsyncActionChunkBroker(ScriptedPolicy(), action_horizon=8, execution_horizon=9)


if __name__ == "__main__":
    unittest.main()
