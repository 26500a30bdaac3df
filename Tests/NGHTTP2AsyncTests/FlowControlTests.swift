import Testing
import Foundation
import NIOCore
import HTTPTypes
import NGHTTP2
@testable import NGHTTP2Async

/// Receive windows follow reading; send windows make writers wait; cancelled streams give their credit back.
@Suite struct FlowControlTests {
    /// A server whose `/big/N` streams N bytes in 64 KiB chunks.
    func bigServer(_ configuration: ServerSession.Configuration = .init()) async throws -> ServerSession {
        try await ServerSession.bind(port: 0, configuration: configuration) { request in
            guard request.path.hasPrefix("/big/"), let size = Int(request.path.dropFirst(5)) else {
                return ServerSession.Response(status: .notFound)
            }
            return ServerSession.Response(status: .ok, body: .writer { writer in
                let chunk = ByteBuffer(bytes: payload(64 << 10))
                var sent = 0
                while sent < size {
                    let count = min(chunk.readableBytes, size - sent)
                    try await writer.write(chunk.getSlice(at: 0, length: count)!)
                    sent += count
                }
            })
        }
    }

    @Test func aSlowReaderBuffersAtMostOneStreamWindow() async throws {
        let server = try await bigServer()
        var configuration = ClientSession.Configuration()
        configuration.streamWindowSize = 1 << 20
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)", configuration: configuration)
        let total = 256 << 20
        let response = try await client.get("/big/\(total)")
        var received = 0
        var maxBuffered = 0
        var slowReads = 0
        for try await chunk in response.body {
            received += chunk.readableBytes
            maxBuffered = max(maxBuffered, response.body.bufferedByteCount)
            if slowReads < 20 {  // read slowly at first: the server must stop at the window
                slowReads += 1
                try await Task.sleep(for: .milliseconds(20))
                maxBuffered = max(maxBuffered, response.body.bufferedByteCount)
            }
        }
        #expect(received == total)
        #expect(maxBuffered > 0)
        #expect(maxBuffered <= 1 << 20, "buffered \(maxBuffered) bytes with a 1 MiB stream window")
        let stats = try await client.connection.statistics()
        #expect(stats.openStreams == 0)
        await client.close()
        await server.close()
    }

    @Test func aSlowServerHandlerBoundsUploadBuffering() async throws {
        let maxBuffered = ManagedCounter()
        var serverConfiguration = ServerSession.Configuration()
        serverConfiguration.streamWindowSize = 256 << 10
        let server = try await ServerSession.bind(port: 0, configuration: serverConfiguration) { request in
            var count = 0
            try await Task.sleep(for: .milliseconds(200))  // the client fills the window meanwhile
            maxBuffered.max(request.body.bufferedByteCount)
            for try await chunk in request.body {
                count += chunk.readableBytes
                maxBuffered.max(request.body.bufferedByteCount)
            }
            return ServerSession.Response(status: .ok, body: .text("\(count)"))
        }
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
        let produced = ManagedCounter()
        let total = 32 << 20
        let response = try await client.post("/upload", body: .writer { writer in
            let chunk = ByteBuffer(bytes: payload(32 << 10))
            for _ in 0..<(total / chunk.readableBytes) {
                try await writer.write(chunk)
                produced.add(chunk.readableBytes)
            }
        })
        #expect(try await response.text() == "\(total)")
        #expect(produced.value == total)
        #expect(maxBuffered.value > 0)
        #expect(maxBuffered.value <= 256 << 10, "server buffered \(maxBuffered.value) bytes with a 256 KiB stream window")
        await client.close()
        await server.close()
    }

    @Test func cancelledStreamsGiveTheirWindowBack() async throws {
        let server = try await bigServer()
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
        // 100 streams, each read a little and then dropped or cancelled mid-body.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<100 {
                group.addTask {
                    let response = try await client.get("/big/\(8 << 20)")
                    _ = try await response.body.read(upTo: 1000)
                    if index % 2 == 0 {
                        // Let the reader go with bytes buffered.
                        return
                    }
                    let reading = Task { for try await _ in response.body { try await Task.sleep(for: .milliseconds(1)) } }
                    try await Task.sleep(for: .milliseconds(5))
                    reading.cancel()
                    _ = await reading.result
                }
            }
            try await group.waitForAll()
        }
        // The connection still moves a large body at full speed: nothing is left uncredited.
        let response = try await client.get("/big/\(16 << 20)")
        var received = 0
        for try await chunk in response.body { received += chunk.readableBytes }
        #expect(received == 16 << 20)
        let stats = try await client.connection.statistics()
        #expect(stats.openStreams == 0)
        // libnghttp2 tops the window up once half of it was consumed: anything lost would keep it below that.
        #expect(stats.localWindowSize > 4 << 20, "connection window \(stats.localWindowSize) after the cancels")
        await client.close()
        await server.close()
    }

    @Test func tenTimesMaxConcurrentStreamsAllSucceed() async throws {
        var configuration = ServerSession.Configuration()
        configuration.maxConcurrentStreams = 10
        let concurrent = ManagedCounter()
        let peak = ManagedCounter()
        let server = try await ServerSession.bind(port: 0, configuration: configuration) { request in
            peak.max(concurrent.add(1))
            try await Task.sleep(for: .milliseconds(5))
            concurrent.add(-1)
            return ServerSession.Response(status: .ok, body: .text(request.path))
        }
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
        _ = try await client.get("/warm-up").text()  // the server's SETTINGS have arrived
        let paths = try await withThrowingTaskGroup(of: String.self) { group in
            for index in 0..<100 { group.addTask { try await client.get("/\(index)").text() } }
            return try await group.reduce(into: Set<String>()) { $0.insert($1) }
        }
        #expect(paths.count == 100)
        #expect(peak.value <= 10)
        await client.close()
        await server.close()
    }
}

/// A lock-protected counter for tests.
final class ManagedCounter: @unchecked Sendable {  // every access holds the lock
    private let lock = NSLock()
    private var current = 0

    var value: Int { lock.withLock { current } }

    @discardableResult
    func add(_ amount: Int) -> Int { lock.withLock { current += amount; return current } }

    func max(_ candidate: Int) { lock.withLock { current = Swift.max(current, candidate) } }
}

/// Opens once; every `wait`, before and after, returns then.
final class Gate: Sendable {
    private let stream: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation

    init() { (stream, continuation) = AsyncStream.makeStream() }

    func open() { continuation.finish() }

    func wait() async { for await _ in stream {} }
}
