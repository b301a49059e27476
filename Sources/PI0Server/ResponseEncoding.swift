// The result map exactly as openpi's websocket_policy_server.py packs it with msgpack_numpy:
// str keys, ndarrays as bin-keyed maps, Python floats (float64) for timings, and this key order:
//   {"actions": ndarray, <extra keys>, "policy_timing": {"infer_ms": f64},
//    "server_timing": {"infer_ms": f64, "prev_total_ms": f64 (absent on a connection's first request)}}
import MessagePack

enum ResponseEncoding {
    static func result(_ output: PolicyOutput, serverInferMs: Double, prevTotalMs: Double?) -> MessagePackValue {
        var pairs: [(MessagePackValue, MessagePackValue)] = [(.string("actions"), NumpyMsgpack.encodeArray(output.actions))]
        for (key, value) in output.extra where key != "actions" && key != "policy_timing" && key != "server_timing" {
            pairs.append((.string(key), NumpyMsgpack.encodeTree(value)))
        }
        pairs.append((.string("policy_timing"), .map([(.string("infer_ms"), .double(output.policyInferMs ?? serverInferMs))])))
        var server: [(MessagePackValue, MessagePackValue)] = [(.string("infer_ms"), .double(serverInferMs))]
        if let prevTotalMs { server.append((.string("prev_total_ms"), .double(prevTotalMs))) }
        pairs.append((.string("server_timing"), .map(server)))
        return .map(pairs)
    }
}
