import Benchmark
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NGHTTP2
import NIOCore
import NIOHPACK

/// The request header set both HPACK benchmarks encode and decode: what a browser-like client sends to an API.
///
/// Every request carries a different `x-request-id` (UUID-shaped, 36 bytes), as on a real connection. The ids come
/// from a pool of `poolSize` distinct values built before measuring, so that the benchmarks time HPACK and not
/// string formatting. Each id costs 32 + 12 + 36 = 80 bytes of dynamic table, so the 4,096-byte table holds at
/// most ~50 of them: an id is long evicted before it comes round again, and every request's id is new to the
/// table, exactly as with a counter.
enum Workload {
    static let poolSize = 1024

    static let userAgent =
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36"
    /// 99 bytes.
    static let cookie =
        "_ga=GA1.2.1789012345.1716400000; sessionid=8b1d4f0e6a2c4e7f9b3d5a1c7e9f2b4d; theme=dark; lang=en-US"
    static let authorization =
        "Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwiaWF0IjoxNzE2NDAwMDAwfQ.c2lnbmF0dXJlLWJ5dGVz"

    /// One request's fields in order. `neverIndex` marks the field sent as "literal never indexed".
    static func requestFields(id: Int) -> [(name: String, value: String, neverIndex: Bool)] {
        let hex = String(id, radix: 16)
        let requestID = "7f3c2a1e-4b5d-4c6e-8f90-" + String(repeating: "0", count: max(0, 12 - hex.count)) + hex
        return [
            (":method", "GET", false),
            (":scheme", "https", false),
            (":authority", "www.example.com", false),
            (":path", "/api/v1/items?page=2&sort=desc", false),
            ("user-agent", userAgent, false),
            ("accept", "application/json, text/plain, */*", false),
            ("accept-encoding", "gzip, deflate, br", false),
            ("accept-language", "en-US,en;q=0.9,de;q=0.8", false),
            ("cookie", cookie, false),
            ("authorization", authorization, true),
            ("x-request-id", requestID, false),
        ]
    }

    /// The pool as swift-nghttp2 header lists.
    static func nghttp2Requests() -> [[HeaderField]] {
        (0..<poolSize).map { id in
            requestFields(id: id).map { HeaderField($0.name, $0.value, flags: $0.neverIndex ? .noIndex : []) }
        }
    }

    /// The same pool as NIOHPACK header lists.
    static func nioRequests() -> [HPACKHeaders] {
        (0..<poolSize).map { id in
            var headers = HPACKHeaders()
            for field in requestFields(id: id) {
                headers.add(name: field.name, value: field.value, indexing: field.neverIndex ? .neverIndexed : .indexable)
            }
            return headers
        }
    }
}

/// Holds a benchmark's long-lived state between calls of its closure. Each benchmark runs all its iterations
/// synchronously on one thread, so the state is never shared.
final class StateBox<State>: @unchecked Sendable {
    var state: State?

    func get(_ make: () throws -> State) rethrows -> State {
        if let state { return state }
        let made = try make()
        state = made
        return made
    }
}

/// CPU time of the benchmark thread, from `CLOCK_THREAD_CPUTIME_ID` (nanosecond resolution). `cpuTotal` comes
/// from /proc/self/stat in scheduler ticks (10 ms on Linux), too coarse for one iteration of these benchmarks;
/// this custom metric gives the same quantity precisely.
let threadCPU = BenchmarkMetric.custom("CPU time (thread) (ns)", polarity: .prefersSmaller, useScalingFactor: true)

func threadCPUTime() -> Int {
    var now = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now)
    return Int(now.tv_sec) * 1_000_000_000 + Int(now.tv_nsec)
}

/// Measures `body` (the whole inner loop of one iteration): wall clock, CPU and malloc counters by the
/// benchmark package, plus the thread's CPU time.
@inline(__always)
func measure(_ benchmark: Benchmark, _ body: () throws -> Void) rethrows {
    let cpuStart = threadCPUTime()
    benchmark.startMeasurement()
    try body()
    benchmark.stopMeasurement()
    benchmark.measurement(threadCPU, threadCPUTime() - cpuStart)
}
