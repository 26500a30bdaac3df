import Testing
@testable import H2Command

@Suite struct LatencyHistogramTests {
    @Test func bucketsCoverEveryValueInOrder() {
        var previous = -1
        for value: Int64 in [0, 1, 15, 16, 17, 31, 32, 1_000, 999_999, 1_000_000, 5_000_000_000, Int64.max / 2] {
            let bucket = LatencyHistogram.bucket(of: value)
            #expect(bucket >= previous)
            previous = bucket
            let (low, high) = LatencyHistogram.range(of: bucket)
            #expect(low <= value && value < high, "\(value) not in [\(low), \(high))")
            #expect(Double(high - low) <= max(1, Double(low) / 16 + 1))
        }
    }

    @Test func percentilesAreWithinABucketOfTheTruth() {
        var histogram = LatencyHistogram()
        var other = LatencyHistogram()
        for microseconds in 1...10_000 {
            if microseconds.isMultiple(of: 2) {
                histogram.record(.microseconds(microseconds))
            } else {
                other.record(.microseconds(microseconds))
            }
        }
        histogram.merge(other)
        #expect(histogram.count == 10_000)
        #expect(histogram.minimum == .microseconds(1))
        #expect(histogram.maximum == .microseconds(10_000))
        for (p, truth) in [(0.5, 5_000.0), (0.99, 9_900.0), (0.01, 100.0)] {
            let value = LatencyHistogram.nanoseconds(histogram.percentile(p)!)
            #expect(abs(Double(value) / 1_000 - truth) / truth < 0.07, "p\(p): \(value) ns")
        }
        #expect(LatencyHistogram().percentile(0.5) == nil)
    }
}
