// π0.5's prompt: the normalised state, discretised into 256 bins, written into the text the PaliGemma
// tokenizer receives (LeRobot 0.6.1 Pi05PrepareStateTokenizerProcessorStep, policies/pi05/processor_pi05.py:52-80;
// docs/SPEC_PI05.md §10):
//   d_i     = digitize(s_i, linspace(−1, 1, 257)[:-1]) − 1      bin k = [−1 + k/128, −1 + (k+1)/128)
//   cleaned = task.strip().replace("_", " ").replace("\n", " ")
//   prompt  = "Task: {cleaned}, State: {d_0} {d_1} …;\nAction: "
// Finite values follow LeRobot exactly (below −1 gives −1, 0.9921875 and above give 255). A NaN or
// infinite state is refused (LeRobot writes 255 for NaN): nothing non-finite may steer a robot.
import Foundation

public enum PI05Prompt {
    /// Number of state bins.
    public static let bins = 256

    /// NumPy `digitize(x, linspace(-1, 1, 257)[:-1]) - 1` for one finite value: the number of bin edges
    /// −1 + k/128 (k < 256, exact in float64) that are ≤ x, minus one. x is compared in float64, as NumPy
    /// compares the float32 state with the float64 edges.
    public static func bin(_ x: Float) -> Int {
        let v = Double(x)
        var lo = 0, hi = bins   // count of edges ≤ v lies in [lo, hi]
        while lo < hi {
            let mid = (lo + hi) / 2
            if -1 + Double(mid) / 128 <= v { lo = mid + 1 } else { hi = mid }
        }
        return lo - 1
    }

    /// The bins of a normalised state; a NaN or infinite value is an error naming its index.
    public static func discretize(_ state: [Float]) throws -> [Int] {
        if let i = state.firstIndex(where: { !$0.isFinite }) {
            throw PolicyError.badState(reason: "normalised value \(state[i]) at index \(i) is not finite; π0.5 writes the state "
                                       + "into its prompt and refuses NaN/Inf (LeRobot would write bin 255)")
        }
        return state.map(bin)
    }

    /// Python's `str.isspace` characters (what `str.strip()` removes): Unicode White_Space plus the
    /// separators U+001C…U+001F.
    static func isPythonWhitespace(_ u: Unicode.Scalar) -> Bool {
        u.properties.isWhitespace || (0x1C...0x1F).contains(u.value)
    }

    /// task.strip().replace("_", " ").replace("\n", " "), on Unicode scalars (so "\r\n" keeps its "\r").
    public static func cleanTask(_ task: String) -> String {
        let scalars = Array(task.unicodeScalars)
        guard let first = scalars.firstIndex(where: { !isPythonWhitespace($0) }),
              let last = scalars.lastIndex(where: { !isPythonWhitespace($0) }) else { return "" }
        var out = String.UnicodeScalarView()
        for u in scalars[first...last] { out.append(u == "_" || u == "\n" ? " " : u) }
        return String(out)
    }

    /// The exact prompt for a task and a normalised state.
    public static func prompt(task: String, normalizedState: [Float]) throws -> String {
        let d = try discretize(normalizedState)
        return "Task: \(cleanTask(task)), State: \(d.map(String.init).joined(separator: " "));\nAction: "
    }
}
