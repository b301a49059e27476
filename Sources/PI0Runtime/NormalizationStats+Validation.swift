// Checks of the normalisation statistics when they are loaded: a NaN or ±inf statistic, a negative
// standard deviation or a scale that is zero even after LeRobot's eps (a division by zero) would turn
// every action into NaN or ±inf, so each is an error naming the stats file and the tensor.
import Foundation

extension NormalizationStats.Step {
    /// Throws `NormalizerError.invalidStat` for the first unusable statistic of a configured feature.
    func checkStats() throws {
        let file = statsFile ?? jsonFile
        guard eps.isFinite, eps >= 0 else {
            throw NormalizerError.invalidStat(file: jsonFile, key: "eps", reason: "must be finite and >= 0, got \(eps)")
        }
        for (key, feature) in features.sorted(by: { $0.key < $1.key }) where feature.mode != .identity {
            guard let st = stats[key] else { continue }
            for (name, values) in st.sorted(by: { $0.key < $1.key }) {
                if let i = values.firstIndex(where: { !$0.isFinite }) {
                    throw NormalizerError.invalidStat(file: file, key: "\(key).\(name)", reason: "value \(values[i]) at index \(i) is not finite")
                }
            }
            switch feature.mode {
            case .meanStd:
                guard let std = st["std"] else { continue }
                if let i = std.firstIndex(where: { $0 < 0 }) {
                    throw NormalizerError.invalidStat(file: file, key: "\(key).std", reason: "negative standard deviation \(std[i]) at index \(i)")
                }
                if let i = std.firstIndex(where: { $0 + eps == 0 }) {
                    throw NormalizerError.invalidStat(file: file, key: "\(key).std", reason: "zero scale at index \(i) (std + eps = 0): division by zero")
                }
            case .minMax, .quantiles, .quantile10:
                let (lo, hi) = feature.mode == .minMax ? ("min", "max") : (feature.mode == .quantiles ? ("q01", "q99") : ("q10", "q90"))
                guard let a = st[lo], let b = st[hi], a.count == b.count else { continue }
                if let i = a.indices.first(where: { b[$0] - a[$0] == 0 && eps == 0 }) {
                    throw NormalizerError.invalidStat(file: file, key: "\(key).\(hi)", reason: "zero scale at index \(i) (\(hi) = \(lo) and eps = 0): division by zero")
                }
                if let i = a.indices.first(where: { !(b[$0] - a[$0]).isFinite }) {
                    throw NormalizerError.invalidStat(file: file, key: "\(key).\(hi)", reason: "\(hi) − \(lo) overflows at index \(i)")
                }
            case .identity:
                break
            }
        }
    }
}
