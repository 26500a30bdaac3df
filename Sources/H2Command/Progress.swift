import Foundation

/// A one-line progress bar on stderr: bytes, rate and time left.
final class Progress {
    private let total: Int?
    private var done = 0
    private let start = ContinuousClock.now
    private var lastDrawn = ContinuousClock.now - .seconds(1)

    init(total: Int?) {
        self.total = total
    }

    func advance(by count: Int) {
        done += count
        if ContinuousClock.now - lastDrawn >= .milliseconds(100) { draw() }
    }

    func finish() {
        draw()
        FileHandle.standardError.write(Data("\n".utf8))
    }

    private func draw() {
        lastDrawn = ContinuousClock.now
        let elapsed = max(seconds(ContinuousClock.now - start), 0.001)
        let rate = Double(done) / elapsed
        var line = "\r"
        if let total, total > 0 {
            let fraction = min(Double(done) / Double(total), 1)
            let width = 30
            let filled = Int(fraction * Double(width))
            line += "[" + String(repeating: "#", count: filled) + String(repeating: " ", count: width - filled) + "] "
            line += String(format: "%3.0f%% ", fraction * 100)
            line += "\(Self.bytes(done)) / \(Self.bytes(total))  \(Self.bytes(Int(rate)))/s"
            if rate > 0, done < total { line += String(format: "  ETA %.0fs", Double(total - done) / rate) }
        } else {
            line += "\(Self.bytes(done))  \(Self.bytes(Int(rate)))/s"
        }
        FileHandle.standardError.write(Data((line + "   ").utf8))
    }

    static func bytes(_ count: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB"]
        var value = Double(count)
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        return unit == 0 ? "\(count) B" : String(format: "%.1f %@", value, units[unit])
    }
}

func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}
