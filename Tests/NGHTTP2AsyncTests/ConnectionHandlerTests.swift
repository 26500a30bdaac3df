import Testing
import NIOCore
import NIOEmbedded
import NIOConcurrencyHelpers
import NGHTTP2
@testable import NGHTTP2Async

/// The connection handler on an `EmbeddedChannel`: bytes in by hand, bytes out read back, time advanced by hand. No
/// sockets and no real clock, so every deadline is exact.
@Suite final class ConnectionHandlerTests {
    /// Every channel a test made. An `EmbeddedChannel` removes its handlers (which breaks the handler → context →
    /// pipeline → handler cycle) only when its loop runs after the close: finished here, or AddressSanitizer's leak
    /// check finds each test's whole channel, handler and libnghttp2 session leaked.
    private var channels: [EmbeddedChannel] = []

    deinit {
        for channel in channels { _ = try? channel.finish(acceptAlreadyClosed: true) }
    }

    /// Records what a connection tells its delegate.
    final class RecordingDelegate: ConnectionDelegate {
        let events = NIOLockedValueBox<[String]>([])
        let admits: Bool

        init(admits: Bool = true) { self.admits = admits }

        var observesStreams: Bool { true }

        func connectionStarted(_ connection: ConnectionReference) -> Bool {
            events.withLockedValue { $0.append("started") }
            return admits
        }

        func connection(_ connection: ConnectionReference, emitted event: ConnectionEvent) {
            let text: String =
                switch event {
                case .ready(let limit): "ready(\(limit))"
                case .maxConcurrentStreamsChanged(let limit): "maxConcurrentStreams(\(limit))"
                case .goAwayReceived(let last, let code): "goAway(\(last), \(code))"
                case .streamOpened(let open): "opened(\(open))"
                case .streamClosed(let open): "closed(\(open))"
                case .closed: "closed"
                }
            events.withLockedValue { $0.append(text) }
        }

        var recorded: [String] { events.withLockedValue { $0 } }
    }

    struct Connection {
        let channel: EmbeddedChannel
        let delegate: RecordingDelegate

        /// Feeds `bytes` as one read burst (read, then read complete).
        func receive(_ bytes: [UInt8]) throws {
            try channel.writeInbound(channel.allocator.buffer(bytes: bytes))
            channel.pipeline.fireChannelReadComplete()
            channel.embeddedEventLoop.run()
        }

        /// The frames written since the last call.
        func sentFrames() throws -> [RawFrame] {
            var bytes: [UInt8] = []
            while var buffer = try channel.readOutbound(as: ByteBuffer.self) {
                bytes += buffer.readBytes(length: buffer.readableBytes) ?? []
            }
            return RawFrame.parse(bytes)
        }

        func advance(by seconds: Int64) {
            channel.embeddedEventLoop.advanceTime(by: .seconds(seconds))
        }
    }

    func server(_ configure: (inout ServerSession.Configuration) -> Void = { _ in }, admits: Bool = true) throws -> Connection {
        var configuration = ServerSession.Configuration()
        configure(&configuration)
        let delegate = RecordingDelegate(admits: admits)
        let handler = try ConnectionHandler(
            role: .server(handler: { request in ServerSession.Response(body: .text(request.path)) }),
            configuration: configuration.connectionConfiguration,
            delegate: delegate
        )
        let channel = EmbeddedChannel()
        channels.append(channel)
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return Connection(channel: channel, delegate: delegate)
    }

    func client(_ configure: (inout ClientSession.Configuration) -> Void = { _ in }) throws -> Connection {
        var configuration = ClientSession.Configuration()
        configure(&configuration)
        let delegate = RecordingDelegate()
        let handler = try ConnectionHandler(role: .client, configuration: configuration.connectionConfiguration, delegate: delegate)
        let channel = EmbeddedChannel()
        channels.append(channel)
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        return Connection(channel: channel, delegate: delegate)
    }

    /// A server's SETTINGS frame with SETTINGS_MAX_CONCURRENT_STREAMS = `limit`.
    func settings(maxConcurrentStreams limit: UInt8) -> [UInt8] {
        [0, 0, 6, 0x4, 0, 0, 0, 0, 0, 0, 0x3, 0, 0, 0, limit]
    }

    @Test func aServerSendsItsSettingsAtOnceAndClosesAClientWithoutAPrefaceAtTheDeadline() throws {
        let connection = try server { $0.prefaceTimeout = .seconds(10) }
        #expect(try connection.sentFrames().first?.type == 0x4, "SETTINGS first")
        connection.advance(by: 9)
        #expect(connection.channel.isActive, "not before the deadline")
        connection.advance(by: 1)
        let goaway = try connection.sentFrames().first { $0.type == 0x7 }
        #expect(goaway?.goawayErrorCode == 0 && goaway?.goawayLastStreamID == 0)
        #expect(!connection.channel.isActive)
        #expect(connection.delegate.recorded == ["started", "closed"])
    }

    @Test func aHeaderBlockLeftOpenClosesTheConnectionAtTheHeaderDeadlineNamingTheLastCompleteRequest() throws {
        let connection = try server { $0.headerTimeout = .seconds(20) }
        try connection.receive(clientPreface + rawGet(streamID: 1))
        let answered = try connection.sentFrames()
        #expect(answered.contains { $0.type == 0x1 && $0.streamID == 1 }, "stream 1 answered: \(answered)")
        try connection.receive(rawGet(streamID: 3, endHeaders: false))
        connection.advance(by: 19)
        #expect(connection.channel.isActive)
        connection.advance(by: 1)
        let goaway = try connection.sentFrames().first { $0.type == 0x7 }
        #expect(goaway?.goawayLastStreamID == 1, "stream 3 was not processed")
        #expect(!connection.channel.isActive)
    }

    @Test func completeHeaderBlocksNeverTriggerTheHeaderDeadline() throws {
        let connection = try server { $0.headerTimeout = .seconds(20); $0.idleTimeout = nil }
        try connection.receive(clientPreface + rawGet(streamID: 1) + rawGet(streamID: 3))
        connection.advance(by: 3600)
        #expect(connection.channel.isActive)
    }

    @Test func anIdleServerConnectionGetsGoAwayAfterTheIdleTimeoutCountedFromItsLastStream() throws {
        let connection = try server { $0.idleTimeout = .seconds(60); $0.prefaceTimeout = nil }
        connection.advance(by: 30)
        try connection.receive(clientPreface + rawGet(streamID: 1))
        connection.advance(by: 59)
        #expect(connection.channel.isActive, "idle counts from the last stream's end, not from the start")
        connection.advance(by: 1)
        #expect(try connection.sentFrames().contains { $0.type == 0x7 && $0.goawayErrorCode == 0 })
        #expect(!connection.channel.isActive)
        #expect(connection.delegate.recorded == ["started", "ready(4294967295)", "opened(1)", "closed(0)", "closed"])
    }

    @Test func aConnectionAtItsRequestLimitSendsGoAwayNamingItsLastRequest() throws {
        let connection = try server { $0.maxRequestsPerConnection = 2 }
        try connection.receive(clientPreface + rawGet(streamID: 1) + rawGet(streamID: 3) + rawGet(streamID: 5))
        let frames = try connection.sentFrames()
        #expect(frames.first { $0.type == 0x7 }?.goawayLastStreamID == 3)
        #expect(frames.contains { $0.type == 0x1 && $0.streamID == 3 })
        #expect(!frames.contains { $0.type == 0x1 && $0.streamID == 5 }, "a request past the GOAWAY is not answered")
    }

    @Test func aRefusedConnectionSendsGoAwayNamingNoStreamAndCloses() throws {
        let connection = try server(admits: false)
        let frames = try connection.sentFrames()
        #expect(frames.map(\.type) == [0x4, 0x7], "SETTINGS, then GOAWAY: \(frames)")
        #expect(frames.last?.goawayLastStreamID == 0)
        #expect(!connection.channel.isActive)
    }

    @Test func theDelegateHearsReadyLimitChangesAndGoAway() throws {
        let connection = try client()
        try connection.receive(settings(maxConcurrentStreams: 100))
        try connection.receive(settings(maxConcurrentStreams: 100))
        try connection.receive(settings(maxConcurrentStreams: 10))
        try connection.receive([0, 0, 8, 0x7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])  // GOAWAY last 0 NO_ERROR
        #expect(connection.delegate.recorded == ["started", "ready(100)", "maxConcurrentStreams(10)", "goAway(0, NO_ERROR)", "closed"])
    }

    @Test func aClientWhosePeerStopsAnsweringPingsGivesTheConnectionUp() throws {
        let connection = try client { $0.keepAlive = .init(interval: .seconds(30), timeout: .seconds(5)) }
        try connection.receive(settings(maxConcurrentStreams: 100))
        _ = try connection.sentFrames()
        connection.advance(by: 30)
        #expect(try connection.sentFrames().contains { $0.type == 0x6 && $0.flags == 0 }, "a keep-alive PING")
        connection.advance(by: 4)
        #expect(connection.channel.isActive)
        connection.advance(by: 1)
        #expect(!connection.channel.isActive, "no ACK within the timeout")
    }

    @Test func aClientWhosePeerAnswersItsPingsKeepsTheConnection() throws {
        let connection = try client { $0.keepAlive = .init(interval: .seconds(30), timeout: .seconds(5)) }
        try connection.receive(settings(maxConcurrentStreams: 100))
        for _ in 0..<3 {
            _ = try connection.sentFrames()
            connection.advance(by: 30)
            let ping = try #require(try connection.sentFrames().first { $0.type == 0x6 && $0.flags == 0 })
            try connection.receive([0, 0, 8, 0x6, 0x1, 0, 0, 0, 0] + ping.payload)  // its ACK
        }
        connection.advance(by: 10)
        #expect(connection.channel.isActive)
    }

    @Test func requestsSubmittedOutsideAReadBurstAreWrittenEveryFiftyAndTheRestAtTheEndOfTheTick() throws {
        let connection = try client()
        try connection.receive(settings(maxConcurrentStreams: 200))
        _ = try connection.sentFrames()
        let handler = try connection.channel.pipeline.syncOperations.handler(type: ConnectionHandler.self)
        let fields: [HeaderField] = [[":method", "GET"], [":scheme", "http"], [":authority", "a"], [":path", "/"]]
        func writes() throws -> [Int] {
            var streamsPerWrite: [Int] = []
            while var buffer = try connection.channel.readOutbound(as: ByteBuffer.self) {
                let frames = RawFrame.parse(buffer.readBytes(length: buffer.readableBytes) ?? [])
                streamsPerWrite.append(frames.filter { $0.type == 0x1 }.count)
            }
            return streamsPerWrite
        }
        for _ in 0..<120 {
            _ = try handler.session.submitRequest(fields)
            handler.messageSubmitted()
        }
        #expect(try writes() == [50, 50], "two early writes while the tick runs")
        connection.channel.embeddedEventLoop.run()
        #expect(try writes() == [20], "the rest at the end of the tick")
    }
}
