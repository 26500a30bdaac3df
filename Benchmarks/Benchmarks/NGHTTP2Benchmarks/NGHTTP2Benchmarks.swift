import Benchmark

// swift-nghttp2 against swift-nio-http2, pair by pair, on the same workload in the same run.
// Each measured iteration does 1,000 operations (`scalingFactor: .kilo`); long-lived state (encoders,
// decoders, connections) is made before the measurement starts and kept across iterations.
let benchmarks: @Sendable () -> Void = {
    let metrics: [BenchmarkMetric] = [.wallClock, .throughput, .cpuTotal, threadCPU, .mallocCountTotal]

    hpackEncodeBenchmarks(
        configuration: .init(
            metrics: metrics + [blockBytes],
            timeUnits: .nanoseconds,
            warmupIterations: 10,
            scalingFactor: .kilo,
            maxDuration: .seconds(4),
            maxIterations: 1000
        )
    )
    hpackDecodeBenchmarks(
        configuration: .init(
            metrics: metrics,
            timeUnits: .nanoseconds,
            warmupIterations: 10,
            scalingFactor: .kilo,
            maxDuration: .seconds(4),
            maxIterations: 1000
        )
    )
    roundTripBenchmarks(
        configuration: .init(
            metrics: metrics + [wireBytesPerRequest],
            timeUnits: .nanoseconds,
            warmupIterations: 3,
            scalingFactor: .kilo,
            maxDuration: .seconds(6),
            maxIterations: 300
        )
    )
}
