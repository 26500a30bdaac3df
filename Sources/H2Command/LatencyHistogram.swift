/// ServerSession.Request latencies for `h2 load`, in fixed memory: a log-linear histogram (16 buckets per power of two of
/// nanoseconds, so a percentile is within about 6% of the true value), plus the exact minimum and maximum.
/// A million-request run keeps the same few kilobytes as a ten-request one.
struct LatencyHistogram: Sendable {
    private static let subBuckets = 16
    private var counts = [Int](repeating: 0, count: 64 * subBuckets)
    private(set) var count = 0
    private(set) var minimum: Duration?
    private(set) var maximum: Duration?

    mutating func record(_ latency: Duration) {
        counts[Self.bucket(of: Self.nanoseconds(latency))] += 1
        count += 1
        if minimum.map({ latency < $0 }) ?? true { minimum = latency }
        if maximum.map({ latency > $0 }) ?? true { maximum = latency }
    }

    mutating func merge(_ other: LatencyHistogram) {
        for index in counts.indices { counts[index] += other.counts[index] }
        count += other.count
        if let low = other.minimum, minimum.map({ low < $0 }) ?? true { minimum = low }
        if let high = other.maximum, maximum.map({ high > $0 }) ?? true { maximum = high }
    }

    /// The latency below which a fraction `p` (0…1) of the requests fall: the middle of its bucket, kept within the
    /// exact minimum and maximum.
    func percentile(_ p: Double) -> Duration? {
        guard count > 0, let minimum, let maximum else { return nil }
        let rank = max(1, Int((Double(count) * p).rounded(.up)))
        var seen = 0
        for (index, bucketCount) in counts.enumerated() where bucketCount > 0 {
            seen += bucketCount
            if seen >= rank {
                let (low, high) = Self.range(of: index)
                let middle = Duration.nanoseconds(low + (high - low) / 2)
                return min(max(middle, minimum), maximum)
            }
        }
        return maximum
    }

    static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return max(0, seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    /// Values below 16 ns have a bucket each; above, each power of two is split into 16 equal buckets.
    static func bucket(of nanoseconds: Int64) -> Int {
        guard nanoseconds >= Int64(subBuckets) else { return Int(nanoseconds) }
        let power = 63 - nanoseconds.leadingZeroBitCount  // >= 4
        let offset = Int((nanoseconds >> (power - 4)) & Int64(subBuckets - 1))
        return min((power - 3) * subBuckets + offset, 64 * subBuckets - 1)
    }

    /// The nanoseconds a bucket holds: [low, high).
    static func range(of bucket: Int) -> (Int64, Int64) {
        guard bucket >= subBuckets else { return (Int64(bucket), Int64(bucket) + 1) }
        let power = bucket / subBuckets + 3
        let offset = Int64(bucket % subBuckets)
        let width = Int64(1) << (power - 4)
        let low = (Int64(1) << power) + offset * width
        return (low, low + width)
    }
}
