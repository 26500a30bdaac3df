import Benchmark
import NGHTTP2
import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2

/// The exchange both round-trip benchmarks repeat on one long-lived in-memory connection: a GET with a few
/// headers, answered with 200, a content-type and a 12-byte body (HEADERS, then DATA with END_STREAM).
enum RoundTrip {
    static let request: [(String, String)] = [
        (":method", "GET"),
        (":scheme", "https"),
        (":authority", "www.example.com"),
        (":path", "/api/v1/ping"),
        ("user-agent", "bench-client/1.0"),
        ("accept", "text/plain"),
    ]
    static let response: [(String, String)] = [(":status", "200"), ("content-type", "text/plain; charset=utf-8")]
    static let body: [UInt8] = Array("Hello, HTTP2".utf8)  // 12 bytes
}

// MARK: - swift-nghttp2: two Sessions

/// A client and a server `Session` wired back to back. Bytes go through one reused buffer, as they would
/// through a socket's write buffer.
final class SessionPair {
    let client: Session
    let server: Session
    let request = RoundTrip.request.map { HeaderField($0.0, $0.1) }
    let response = RoundTrip.response.map { HeaderField($0.0, $0.1) }
    var wire: [UInt8] = []
    /// Responses the client saw complete (DATA with END_STREAM), and their body bytes.
    var responses = 0
    var bodyBytes = 0
    /// Bytes moved between the two sessions, both ways.
    var wireBytes = 0

    init() throws {
        client = try Session(role: .client)
        server = try Session(role: .server)
        wire.reserveCapacity(4096)
        // The server answers every complete request (HEADERS with END_STREAM) at once.
        server.callbacks.onFrameReceived = { [unowned self] frame in
            if case .headers(let category, _, _, _) = frame.payload, category == .request,
                frame.flags.contains(.endStream)
            {
                try server.submitResponse(streamID: frame.streamID, response, body: .bytes(RoundTrip.body))
            }
        }
        client.callbacks.onDataChunk = { [unowned self] _, data in bodyBytes += data.count }
        client.callbacks.onFrameReceived = { [unowned self] frame in
            if frame.type == .data, frame.flags.contains(.endStream) { responses += 1 }
        }
        // Connection setup (preface and SETTINGS both ways, acknowledged), outside any measurement.
        try server.submitSettings([Setting(.maxConcurrentStreams, 100)])
        try client.submitSettings([Setting(.maxConcurrentStreams, 100)])
        try pump()
    }

    /// Moves bytes both ways until neither side has anything left to send.
    func pump() throws {
        while true {
            wire.removeAll(keepingCapacity: true)
            try client.send { wire.append(contentsOf: $0) }
            let clientSent = !wire.isEmpty
            wireBytes += wire.count
            if clientSent { try server.receive(wire) }
            wire.removeAll(keepingCapacity: true)
            try server.send { wire.append(contentsOf: $0) }
            let serverSent = !wire.isEmpty
            wireBytes += wire.count
            if serverSent { try client.receive(wire) }
            if !clientSent && !serverSent { return }
        }
    }

    func roundTrip() throws {
        try client.submitRequest(request)
        try pump()
    }
}

// MARK: - swift-nio-http2: two EmbeddedChannels

/// Counts what the client's stream channels receive.
final class ResponseCounter: @unchecked Sendable {
    var responses = 0
    var bodyBytes = 0
}

/// Client stream handler: sends the request when its stream channel becomes active, counts the response.
final class RequestHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    let headers: HPACKHeaders
    let counter: ResponseCounter

    init(headers: HPACKHeaders, counter: ResponseCounter) {
        self.headers = headers
        self.counter = counter
    }

    func channelActive(context: ChannelHandlerContext) {
        context.writeAndFlush(wrapOutboundOut(.headers(.init(headers: headers, endStream: true))), promise: nil)
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .data(let data) = unwrapInboundIn(data) {
            if case .byteBuffer(let buffer) = data.data { counter.bodyBytes += buffer.readableBytes }
            if data.endStream { counter.responses += 1 }
        }
    }
}

/// Server stream handler: answers a complete request with HEADERS, then DATA with END_STREAM.
final class ResponseHandler: ChannelInboundHandler {
    typealias InboundIn = HTTP2Frame.FramePayload
    typealias OutboundOut = HTTP2Frame.FramePayload

    let headers: HPACKHeaders
    let body: ByteBuffer

    init(headers: HPACKHeaders, body: ByteBuffer) {
        self.headers = headers
        self.body = body
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .headers(let request) = unwrapInboundIn(data), request.endStream else { return }
        context.write(wrapOutboundOut(.headers(.init(headers: headers))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.data(.init(data: .byteBuffer(body), endStream: true))), promise: nil)
    }
}

/// A client and a server `EmbeddedChannel`, each with a `NIOHTTP2Handler` and its inline stream multiplexer
/// (`configureHTTP2Pipeline(mode:connectionConfiguration:streamConfiguration:)`, swift-nio-http2's recommended
/// setup), wired back to back on one `EmbeddedEventLoop`. Each request opens a client stream channel; each
/// inbound request stream gets a server stream channel with `ResponseHandler`.
final class ChannelPair {
    let loop: EmbeddedEventLoop
    let client: EmbeddedChannel
    let server: EmbeddedChannel
    let multiplexer: NIOHTTP2Handler.StreamMultiplexer
    let counter = ResponseCounter()
    let openStream: NIOChannelInitializer
    /// Bytes moved between the two channels, both ways.
    var wireBytes = 0

    init() throws {
        loop = EmbeddedEventLoop()
        client = EmbeddedChannel(loop: loop)
        server = EmbeddedChannel(loop: loop)
        let responseHeaders = HPACKHeaders(RoundTrip.response)
        let body = ByteBuffer(bytes: RoundTrip.body)
        multiplexer = try client.pipeline.syncOperations.configureHTTP2Pipeline(
            mode: .client,
            connectionConfiguration: .init(),
            streamConfiguration: .init()
        ) { channel in channel.eventLoop.makeSucceededVoidFuture() }
        _ = try server.pipeline.syncOperations.configureHTTP2Pipeline(
            mode: .server,
            connectionConfiguration: .init(),
            streamConfiguration: .init()
        ) { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(ResponseHandler(headers: responseHeaders, body: body))
            }
        }
        let requestHeaders = HPACKHeaders(RoundTrip.request)
        let counter = counter
        openStream = { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(RequestHandler(headers: requestHeaders, counter: counter))
            }
        }
        // Connection setup (preface and SETTINGS both ways, acknowledged), outside any measurement.
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: 443)
        try client.connect(to: address).wait()
        try server.connect(to: address).wait()
        try pump()
    }

    /// Runs pending event-loop work and moves bytes both ways until neither side writes anything more.
    func pump() throws {
        var moved: Bool
        repeat {
            moved = false
            loop.run()
            while let bytes = try client.readOutbound(as: ByteBuffer.self) {
                moved = true
                wireBytes += bytes.readableBytes
                try server.writeInbound(bytes)
            }
            while let bytes = try server.readOutbound(as: ByteBuffer.self) {
                moved = true
                wireBytes += bytes.readableBytes
                try client.writeInbound(bytes)
            }
        } while moved
        // Connection-level frames that reach the end of a pipeline would pile up in an EmbeddedChannel's inbound
        // buffer (a socket channel drops them): drop them here.
        while try client.readInbound(as: HTTP2Frame.self) != nil {}
        while try server.readInbound(as: HTTP2Frame.self) != nil {}
    }

    func roundTrip() throws {
        multiplexer.createStreamChannel(promise: nil, openStream)
        try pump()
    }
}

/// Average bytes on the wire (both directions) per request in one iteration, to show both pairs exchange the same
/// frames.
let wireBytesPerRequest = BenchmarkMetric.custom("wire bytes (avg)", polarity: .prefersSmaller, useScalingFactor: false)

func roundTripBenchmarks(configuration: Benchmark.Configuration) {
    let sessions = StateBox<SessionPair>()
    Benchmark("Round trip / nghttp2 Session pair", configuration: configuration) { benchmark in
        let pair = try! sessions.get { try SessionPair() }
        let before = pair.responses
        let wireBefore = pair.wireBytes
        measure(benchmark) {
            for _ in benchmark.scaledIterations {
                try! pair.roundTrip()
            }
        }
        let count = benchmark.scaledIterations.count
        precondition(pair.responses - before == count, "\(pair.responses - before) responses for \(count) requests")
        precondition(pair.bodyBytes == pair.responses * RoundTrip.body.count, "body bytes lost")
        benchmark.measurement(wireBytesPerRequest, (pair.wireBytes - wireBefore) / count)
    }

    // The EmbeddedEventLoop must stay on the thread that made it: the pair is made lazily in the benchmark
    // closure, which runs every iteration (warm-up included) on the same thread.
    let channels = StateBox<ChannelPair>()
    Benchmark("Round trip / swift-nio-http2 EmbeddedChannel pair", configuration: configuration) { benchmark in
        let pair = try! channels.get { try ChannelPair() }
        let before = pair.counter.responses
        let wireBefore = pair.wireBytes
        measure(benchmark) {
            for _ in benchmark.scaledIterations {
                try! pair.roundTrip()
            }
        }
        let count = benchmark.scaledIterations.count
        let responses = pair.counter.responses
        precondition(responses - before == count, "\(responses - before) responses for \(count) requests")
        precondition(pair.counter.bodyBytes == responses * RoundTrip.body.count, "body bytes lost")
        benchmark.measurement(wireBytesPerRequest, (pair.wireBytes - wireBefore) / count)
    }
}
