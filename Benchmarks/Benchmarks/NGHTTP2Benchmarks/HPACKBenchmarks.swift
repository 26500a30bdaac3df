import Benchmark
import NGHTTP2
import NIOCore
import NIOHPACK

/// Average size of the header blocks encoded in one iteration, so the two encoders' output can be compared too.
let blockBytes = BenchmarkMetric.custom("block bytes (avg)", polarity: .prefersSmaller, useScalingFactor: false)

// MARK: - Encode

/// Long-lived swift-nghttp2 encoder, as on a connection: each call encodes the next request of the pool into a
/// reused output buffer.
final class NGHTTP2EncodeState {
    let encoder: HPACK.Encoder
    let requests = Workload.nghttp2Requests()
    var buffer: [UInt8] = []
    var next = 0

    init() throws {
        encoder = try HPACK.Encoder()
        buffer.reserveCapacity(1024)
    }
}

/// Long-lived NIOHPACK encoder, same workload: `encode(headers:to:)` (NIOHPACK's one-shot API, the one
/// NIOHTTP2 itself uses) into a reused ByteBuffer.
final class NIOEncodeState {
    let allocator = ByteBufferAllocator()
    var encoder: HPACKEncoder
    let requests = Workload.nioRequests()
    var buffer: ByteBuffer
    var next = 0

    init() {
        encoder = HPACKEncoder(allocator: allocator)
        buffer = allocator.buffer(capacity: 1024)
    }
}

func hpackEncodeBenchmarks(configuration: Benchmark.Configuration) {
    let nghttp2 = StateBox<NGHTTP2EncodeState>()
    Benchmark("HPACK encode / nghttp2", configuration: configuration) { benchmark in
        let state = try! nghttp2.get { try NGHTTP2EncodeState() }
        var bytes = 0
        measure(benchmark) {
            for _ in benchmark.scaledIterations {
                state.buffer.removeAll(keepingCapacity: true)
                try! state.encoder.encode(state.requests[state.next], into: &state.buffer)
                state.next = (state.next + 1) & (Workload.poolSize - 1)
                bytes &+= state.buffer.count
            }
        }
        blackHole(state.buffer)
        benchmark.measurement(blockBytes, bytes / benchmark.scaledIterations.count)
    }

    let nio = StateBox<NIOEncodeState>()
    Benchmark("HPACK encode / NIOHPACK", configuration: configuration) { benchmark in
        let state = nio.get { NIOEncodeState() }
        var bytes = 0
        measure(benchmark) {
            for _ in benchmark.scaledIterations {
                state.buffer.clear()
                try! state.encoder.encode(headers: state.requests[state.next], to: &state.buffer)
                state.next = (state.next + 1) & (Workload.poolSize - 1)
                bytes &+= state.buffer.readableBytes
            }
        }
        blackHole(state.buffer)
        benchmark.measurement(blockBytes, bytes / benchmark.scaledIterations.count)
    }
}

// MARK: - Decode

/// The input of both decode benchmarks: one connection's worth of consecutive header blocks for the workload
/// (request i carries pool id i % poolSize), encoded once, before measuring, by a long-lived swift-nghttp2
/// encoder. Both decoders decode the very same bytes.
///
/// Scheme: a decoder only understands a block if it has decoded every earlier block of the sequence, so each
/// benchmark keeps one decoder and decodes the next block on every inner iteration. When the sequence runs out,
/// it starts over with a fresh decoder and decodes the first `warmupBlocks` (which fill the dynamic table to its
/// steady state) before the measurement restarts. Every measured block is thus decoded in steady state, in order,
/// by a decoder whose table matches the encoder's, on both sides alike.
final class DecodeInput: @unchecked Sendable {
    static let warmupBlocks = 128
    static let measuredBlocksPerCycle = 16 * 1000
    static let shared = DecodeInput()

    let blocks: [[UInt8]]
    let buffers: [ByteBuffer]
    let expected: [[(name: String, value: String, neverIndex: Bool)]]

    private init() {
        let count = Self.warmupBlocks + Self.measuredBlocksPerCycle
        let encoder = try! HPACK.Encoder()
        let requests = Workload.nghttp2Requests()
        blocks = (0..<count).map { try! encoder.encode(requests[$0 % Workload.poolSize]) }
        // NIOHPACK reads ByteBuffers: slices of one buffer holding the same bytes, made once.
        var all = ByteBufferAllocator().buffer(capacity: blocks.reduce(0) { $0 + $1.count })
        var offsets: [(Int, Int)] = []
        for block in blocks {
            offsets.append((all.writerIndex, block.count))
            all.writeBytes(block)
        }
        buffers = offsets.map { all.getSlice(at: $0.0, length: $0.1)! }
        expected = (0..<Workload.poolSize).map { Workload.requestFields(id: $0) }
    }

    /// Checks a decoded list against what was encoded (names, values and the never-indexed flag).
    func check(_ index: Int, _ fields: [(name: String, value: String, neverIndex: Bool)]) {
        let want = expected[index % Workload.poolSize]
        precondition(fields.count == want.count, "block \(index): \(fields.count) fields, expected \(want.count)")
        for (got, want) in zip(fields, want) {
            precondition(
                got.name == want.name && got.value == want.value && got.neverIndex == want.neverIndex,
                "block \(index): decoded \(got), expected \(want)"
            )
        }
    }
}

final class NGHTTP2DecodeState {
    let input = DecodeInput.shared
    var decoder: HPACK.Decoder
    var next = 0

    init() throws {
        decoder = try HPACK.Decoder()
        try restart()
        // Both decoders must get every block right; check a whole cycle once, outside the measurement.
        for index in next..<input.blocks.count {
            input.check(index, try decoder.decode(input.blocks[index]).map { ($0.name, $0.value, $0.flags.contains(.noIndex)) })
        }
        try restart()
    }

    /// A fresh decoder, brought to steady state on the first blocks of the sequence.
    func restart() throws {
        decoder = try HPACK.Decoder()
        for index in 0..<DecodeInput.warmupBlocks {
            input.check(index, try decoder.decode(input.blocks[index]).map { ($0.name, $0.value, $0.flags.contains(.noIndex)) })
        }
        next = DecodeInput.warmupBlocks
    }
}

final class NIODecodeState {
    let input = DecodeInput.shared
    let allocator = ByteBufferAllocator()
    var decoder: HPACKDecoder
    var next = 0

    init() throws {
        decoder = HPACKDecoder(allocator: allocator)
        try restart()
        for index in next..<input.buffers.count {
            var block = input.buffers[index]
            input.check(index, try decoder.decodeHeaders(from: &block).map { ($0.name, $0.value, $0.indexable == .neverIndexed) })
        }
        try restart()
    }

    func restart() throws {
        decoder = HPACKDecoder(allocator: allocator)
        for index in 0..<DecodeInput.warmupBlocks {
            var block = input.buffers[index]
            input.check(index, try decoder.decodeHeaders(from: &block).map { ($0.name, $0.value, $0.indexable == .neverIndexed) })
        }
        next = DecodeInput.warmupBlocks
    }
}

func hpackDecodeBenchmarks(configuration: Benchmark.Configuration) {
    let nghttp2 = StateBox<NGHTTP2DecodeState>()
    Benchmark("HPACK decode / nghttp2", configuration: configuration) { benchmark in
        let state = try! nghttp2.get { try NGHTTP2DecodeState() }
        let count = benchmark.scaledIterations.count
        if state.next + count > state.input.blocks.count { try! state.restart() }
        let blocks = state.input.blocks
        measure(benchmark) {
            for _ in benchmark.scaledIterations {
                blackHole(try! state.decoder.decode(blocks[state.next]))
                state.next += 1
            }
        }
    }

    let nio = StateBox<NIODecodeState>()
    Benchmark("HPACK decode / NIOHPACK", configuration: configuration) { benchmark in
        let state = try! nio.get { try NIODecodeState() }
        let count = benchmark.scaledIterations.count
        if state.next + count > state.input.buffers.count { try! state.restart() }
        let buffers = state.input.buffers
        measure(benchmark) {
            for _ in benchmark.scaledIterations {
                var block = buffers[state.next]
                blackHole(try! state.decoder.decodeHeaders(from: &block))
                state.next += 1
            }
        }
    }
}
