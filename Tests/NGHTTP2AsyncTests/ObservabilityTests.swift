import Foundation
import HTTPTypes
import InMemoryTracing
import MetricsTestKit
import NIOCore
import Testing
import Tracing
@testable import NGHTTP2Async

/// Metrics (swift-metrics' `TestMetrics`) and spans (an in-memory tracer propagating W3C `traceparent`) of an
/// ``HTTP2Client`` talking to a ``ServerSession`` on 127.0.0.1.
@Suite(.timeLimit(.minutes(2)))
struct ObservabilityTests {
    struct Failure: Error {}

    /// A server whose handler answers `/ok` with 200, `/fail` by throwing (500), `/reset` with a body that fails
    /// after its first chunk (RST_STREAM INTERNAL_ERROR), anything else with 404.
    func server(_ observability: Observability, handler: ServerSession.Handler? = nil) async throws -> ServerSession {
        var configuration = ServerSession.Configuration()
        configuration.observability = observability
        return try await ServerSession.bind(port: 0, configuration: configuration, handler: handler ?? { request in
            switch request.path {
            case "/ok", "/items?page=2": return ServerSession.Response(body: .text("ok"))
            case "/fail": throw Failure()
            case "/reset":
                return ServerSession.Response(body: .writer { writer in
                    try await writer.write("partial")
                    throw Failure()
                })
            default: return ServerSession.Response(status: .notFound)
            }
        })
    }

    func client(_ observability: Observability) -> HTTP2Client {
        var configuration = HTTP2Client.Configuration()
        configuration.observability = observability
        configuration.retry = .init(maxAttempts: 1)
        return HTTP2Client(configuration: configuration)
    }

    /// Waits (up to 5 s) until `condition` holds: server-side counts land a little after the client has its answer.
    func eventually(_ condition: () throws -> Bool) async throws {
        for _ in 0..<500 {
            if (try? condition()) == true { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(try condition())
    }

    // MARK: Metrics

    @Test func requestsTheImmediateHandlerAnswersAreCountedLikeTheHandlers() async throws {
        let serverMetrics = TestMetrics()
        var configuration = ServerSession.Configuration()
        configuration.observability = Observability(metricsFactory: serverMetrics)
        let server = try await ServerSession.bind(
            port: 0,
            configuration: configuration,
            immediateHandler: { request in request.path == "/now" ? ServerSession.Response(body: .text("now")) : nil },
            handler: { _ in ServerSession.Response(status: .notFound) }
        )
        let client = client(Observability())
        let base = "http://127.0.0.1:\(server.port)"
        for _ in 0..<2 { #expect(try await client.get("\(base)/now").text() == "now") }
        #expect(try await client.get("\(base)/missing").status == .notFound)
        let ok = [("http.request.method", "GET"), ("http.response.status_class", "2xx")]
        let notFound = [("http.request.method", "GET"), ("http.response.status_class", "4xx")]
        try await eventually { try serverMetrics.expectCounter("nghttp2.server.requests", notFound).totalValue == 1 }
        #expect(try serverMetrics.expectCounter("nghttp2.server.requests", ok).totalValue == 2)
        await client.shutdown()
        await server.close()
    }

    @Test func requestsFromClientToServerAreCountedAndTimedByMethodAndStatusClassOnBothSides() async throws {
        let serverMetrics = TestMetrics()
        let clientMetrics = TestMetrics()
        let server = try await server(Observability(metricsFactory: serverMetrics))
        let client = client(Observability(metricsFactory: clientMetrics))
        let base = "http://127.0.0.1:\(server.port)"
        for _ in 0..<3 { _ = try await client.get("\(base)/ok").text() }
        _ = try await client.post("\(base)/missing", body: .text("x")).text()

        for (role, metrics) in [("server", serverMetrics), ("client", clientMetrics)] {
            let prefix = "nghttp2.\(role)."
            let ok = [("http.request.method", "GET"), ("http.response.status_class", "2xx")]
            let notFound = [("http.request.method", "POST"), ("http.response.status_class", "4xx")]
            try await eventually { try metrics.expectCounter(prefix + "requests", notFound).totalValue == 1 }
            #expect(try metrics.expectCounter(prefix + "requests", ok).totalValue == 3, "\(role)")
            #expect(try metrics.expectTimer(prefix + "request.duration", ok).values.count == 3, "\(role)")
            #expect(try metrics.expectTimer(prefix + "request.duration", notFound).values.allSatisfy { $0 > 0 }, "\(role)")
            #expect(try metrics.expectCounter(prefix + "connections.total").totalValue == 1, "\(role)")
            #expect(try metrics.expectMeter(prefix + "connections.open").lastValue == 1, "\(role)")
            try await eventually { try metrics.expectMeter(prefix + "streams.open").lastValue == 0 }
            #expect(try metrics.expectMeter(prefix + "streams.open").values.max() == 1, "\(role): one request at a time")
            #expect(try metrics.expectCounter(prefix + "bytes", [("direction", "received")]).totalValue > 0, "\(role)")
            #expect(try metrics.expectCounter(prefix + "bytes", [("direction", "sent")]).totalValue > 0, "\(role)")
        }
        // What one side sent is what the other received (both counted per read burst / flush, summed here).
        try await eventually {
            try serverMetrics.expectCounter("nghttp2.server.bytes", [("direction", "sent")]).totalValue
                == clientMetrics.expectCounter("nghttp2.client.bytes", [("direction", "received")]).totalValue
        }

        await client.shutdown()
        await server.close()
        #expect(try clientMetrics.expectMeter("nghttp2.client.connections.open").lastValue == 0)
        #expect(try serverMetrics.expectMeter("nghttp2.server.connections.open").lastValue == 0)
    }

    @Test func aResetStreamAndAGoAwayAreCountedByDirectionAndErrorCode() async throws {
        let serverMetrics = TestMetrics()
        let clientMetrics = TestMetrics()
        let server = try await server(Observability(metricsFactory: serverMetrics))
        let client = client(Observability(metricsFactory: clientMetrics))
        let response = try await client.get("http://127.0.0.1:\(server.port)/reset")
        await #expect(throws: HTTP2Error.self) { _ = try await response.text() }
        try await eventually {
            try serverMetrics.expectCounter("nghttp2.server.rst_stream", [("direction", "sent"), ("error_code", "INTERNAL_ERROR")]).totalValue == 1
        }
        #expect(try clientMetrics.expectCounter("nghttp2.client.rst_stream", [("direction", "received"), ("error_code", "INTERNAL_ERROR")]).totalValue == 1)
        #expect(try serverMetrics.expectCounter("nghttp2.server.request.errors", [("http.request.method", "GET"), ("error.type", "_OTHER")]).totalValue == 1)

        // A graceful close: the server's GOAWAY notice and final GOAWAY, both NO_ERROR (the client, told of the
        // first, may close before the second arrives).
        await server.close()
        let sent = try serverMetrics.expectCounter("nghttp2.server.goaway", [("direction", "sent"), ("error_code", "NO_ERROR")]).totalValue
        #expect(sent >= 1)
        try await eventually {
            try clientMetrics.expectCounter("nghttp2.client.goaway", [("direction", "received"), ("error_code", "NO_ERROR")]).totalValue >= 1
        }
        await client.shutdown()
    }

    /// RFC 9113 §6.8: a GOAWAY carries the error code of the connection error that ended the connection; both
    /// roles count it under that code, not only NO_ERROR.
    @Test func aGoAwayForAConnectionErrorIsCountedUnderItsErrorCode() async throws {
        // Server: a WINDOW_UPDATE of 0 on the connection is a connection error PROTOCOL_ERROR (RFC 9113 §6.9).
        let serverMetrics = TestMetrics()
        let server = try await server(Observability(metricsFactory: serverMetrics))
        let connection = try await RawConnection.connect(port: server.port)
        let zeroIncrement = RawFrame(type: FrameType.windowUpdate, streamID: 0, payload: [0, 0, 0, 0])
        try await connection.send(connectionPreface + RawFrame.settings().bytes + zeroIncrement.bytes)
        #expect(await connection.waitForClose(timeout: .seconds(10)), "the server ends the connection")
        try await eventually {
            try serverMetrics.expectCounter("nghttp2.server.goaway", [("direction", "sent"), ("error_code", "PROTOCOL_ERROR")]).totalValue == 1
        }
        await server.close()

        // Client: a server that answers the preface with GOAWAY ENHANCE_YOUR_CALM, last stream 0.
        let clientMetrics = TestMetrics()
        let raw = try await RawServer.start()
        let peer = Task {
            let accepted = try await raw.accept()
            guard await accepted.readPreface(timeout: .seconds(10)) else { return await accepted.close() }
            try await accepted.send(.settings(), .settingsAck, .goaway(lastStreamID: 0, .enhanceYourCalm))
            _ = await accepted.waitForClose(timeout: .seconds(10))
        }
        let client = client(Observability(metricsFactory: clientMetrics))
        await #expect(throws: HTTP2Error.self) { _ = try await client.get("http://127.0.0.1:\(raw.port)/ok") }
        try await eventually {
            try clientMetrics.expectCounter("nghttp2.client.goaway", [("direction", "received"), ("error_code", "ENHANCE_YOUR_CALM")]).totalValue == 1
        }
        await client.shutdown()
        try await peer.value
        await raw.close()
    }

    @Test func aHandlerThatThrowsIsCountedAsAServerErrorAndAsAnError() async throws {
        let serverMetrics = TestMetrics()
        let server = try await server(Observability(metricsFactory: serverMetrics))
        let client = client(.disabled)
        let response = try await client.get("http://127.0.0.1:\(server.port)/fail")
        #expect(response.status == .internalServerError)
        #expect(try serverMetrics.expectCounter("nghttp2.server.requests", [("http.request.method", "GET"), ("http.response.status_class", "5xx")]).totalValue == 1)
        #expect(try serverMetrics.expectCounter("nghttp2.server.request.errors", [("http.request.method", "GET"), ("error.type", "_OTHER")]).totalValue == 1)
        await client.shutdown()
        await server.close()
    }

    @Test func metricObjectsAreMadeOnFirstUseAndUnknownMethodsShareOneDimension() async throws {
        let serverMetrics = TestMetrics()
        let server = try await server(Observability(metricsFactory: serverMetrics))
        let client = client(Observability(metricsFactory: TestMetrics()))
        // Before any request: only the connection-level metrics exist.
        #expect(client.observer?.requestMetrics?.madeCount == 0)
        #expect(serverMetrics.timers.isEmpty)
        for method in ["BREW", "WHEN", "GET"] {
            _ = try await client.request(HTTPRequest.Method(method)!, "http://127.0.0.1:\(server.port)/ok").text()
        }
        #expect(client.observer?.requestMetrics?.madeCount == 2, "_OTHER 2xx and GET 2xx")
        let other = [("http.request.method", "_OTHER"), ("http.response.status_class", "2xx")]
        try await eventually { try serverMetrics.expectCounter("nghttp2.server.requests", other).totalValue == 2 }
        #expect(serverMetrics.counters(label: "nghttp2.server.requests").count == 2)
        await client.shutdown()
        await server.close()
    }

    @Test func withoutAFactoryOrATracerNothingIsMadeOrRecorded() async throws {
        #expect(ServerSession.Configuration().observability.isEnabled == false)
        #expect(HTTP2Client.Configuration().observability.isEnabled == false)
        #expect(ServerObserver(.disabled) == nil)
        let client = client(.disabled)
        #expect(client.observer == nil)
        let server = try await server(.disabled)
        #expect(try await client.get("http://127.0.0.1:\(server.port)/ok").text() == "ok")
        let pool = client.pool(ifExists: try OriginPool.Origin(HTTPRequest(method: .get, scheme: "http", authority: "127.0.0.1:\(server.port)", path: "/")))
        #expect(pool != nil)
        #expect(client.configuration.connection.metrics == nil)
        await client.shutdown()
        await server.close()
    }

    // MARK: Tracing

    @Test func theClientSpanAndTheServerSpanShareTheirTraceThroughTraceparentAndCarryHTTPAttributes() async throws {
        let clientTracer = W3CTestTracer()
        let serverTracer = W3CTestTracer()
        let seen = LockedState<(traceparent: String?, nested: InMemorySpanContext?)>((nil, nil))
        let server = try await server(Observability(tracer: serverTracer)) { request in
            // A span the handler starts is a child of the request's span.
            let nested = serverTracer.startSpan("lookup", context: InstrumentationContext.current ?? .topLevel)
            nested.end()
            seen.withLock { $0 = (request.headers[HTTPField.Name("traceparent")!], nested.context.inMemorySpanContext) }
            return ServerSession.Response(body: .text("ok"))
        }
        let client = client(Observability(tracer: clientTracer))
        let port = server.port
        #expect(try await client.get("http://127.0.0.1:\(port)/items?page=2").text() == "ok")
        await client.shutdown()
        await server.close()

        let clientSpan = try #require(clientTracer.finishedSpans.first)
        #expect(clientTracer.finishedSpans.count == 1)
        let serverSpan = try #require(serverTracer.finishedSpans.first { $0.operationName == "GET" })
        #expect(clientSpan.kind == .client)
        #expect(clientSpan.operationName == "GET")
        #expect(serverSpan.kind == .server)
        #expect(seen.withLock { $0.traceparent } == "00-\(clientSpan.traceID)-\(clientSpan.spanID)-01")
        #expect(serverSpan.traceID == clientSpan.traceID)
        #expect(serverSpan.parentSpanID == clientSpan.spanID)
        let nested = try #require(seen.withLock { $0.nested })
        #expect(nested.traceID == clientSpan.traceID && nested.parentSpanID == serverSpan.spanID)

        let client_ = clientSpan.attributes
        #expect(client_.get("http.request.method") == .string("GET"))
        #expect(client_.get("server.address") == .string("127.0.0.1"))
        #expect(client_.get("server.port") == .int64(Int64(port)))
        #expect(client_.get("url.full") == .string("http://127.0.0.1:\(port)/items?page=2"))
        #expect(client_.get("http.response.status_code") == .int64(200))
        #expect(clientSpan.status == nil)

        let server_ = serverSpan.attributes
        #expect(server_.get("http.request.method") == .string("GET"))
        #expect(server_.get("url.path") == .string("/items"))
        #expect(server_.get("url.query") == .string("page=2"))
        #expect(server_.get("url.scheme") == .string("http"))
        #expect(server_.get("server.address") == .string("127.0.0.1"))
        #expect(server_.get("server.port") == .int64(Int64(port)))
        #expect(server_.get("network.protocol.version") == .string("2"))
        #expect(server_.get("http.response.status_code") == .int64(200))
        #expect(server_.get("client.address") == .string("127.0.0.1"))
    }

    @Test func aServerErrorMarksBothSpansAsFailed() async throws {
        let clientTracer = W3CTestTracer()
        let serverTracer = W3CTestTracer()
        let server = try await server(Observability(tracer: serverTracer))
        let client = client(Observability(tracer: clientTracer))
        #expect(try await client.get("http://127.0.0.1:\(server.port)/fail").status == .internalServerError)
        await client.shutdown()
        await server.close()
        let serverSpan = try #require(serverTracer.finishedSpans.first)
        #expect(serverSpan.attributes.get("http.response.status_code") == .int64(500))
        #expect(serverSpan.status?.code == .error)
        #expect(serverSpan.errors.count == 1)
        let clientSpan = try #require(clientTracer.finishedSpans.first)
        #expect(clientSpan.attributes.get("http.response.status_code") == .int64(500))
        #expect(clientSpan.status?.code == .error)
    }

    @Test func aRedirectFollowedStaysInOneClientSpanWithItsResendCount() async throws {
        let clientTracer = W3CTestTracer()
        let server = try await server(.disabled) { request in
            request.path == "/old"
                ? ServerSession.Response(status: .movedPermanently, headers: [.location: "/ok"])
                : ServerSession.Response(body: .text(request.path))
        }
        var configuration = HTTP2Client.Configuration()
        configuration.observability = Observability(tracer: clientTracer)
        configuration.redirects = .follow()
        let client = HTTP2Client(configuration: configuration)
        #expect(try await client.get("http://127.0.0.1:\(server.port)/old").text() == "/ok")
        await client.shutdown()
        await server.close()
        #expect(clientTracer.finishedSpans.count == 1)
        let span = try #require(clientTracer.finishedSpans.first)
        #expect(span.attributes.get("http.request.resend_count") == .int64(1))
        #expect(span.events.map(\.name) == ["redirect"])
        #expect(span.attributes.get("http.response.status_code") == .int64(200))
    }

    @Test func aRequestThatFailsRecordsTheErrorOnTheClientSpanAndAsAClientError() async throws {
        let clientTracer = W3CTestTracer()
        let clientMetrics = TestMetrics()
        let client = client(Observability(metricsFactory: clientMetrics, tracer: clientTracer))
        // A port nobody listens on (bound, then closed).
        let server = try await server(.disabled)
        let port = server.port
        await server.close()
        await #expect(throws: (any Error).self) { _ = try await client.get("http://127.0.0.1:\(port)/ok") }
        await client.shutdown()
        let span = try #require(clientTracer.finishedSpans.first)
        #expect(span.status?.code == .error)
        #expect(span.errors.count == 1)
        #expect(clientMetrics.counters(label: "nghttp2.client.request.errors").map(\.totalValue) == [1])
        #expect(clientMetrics.counters(label: "nghttp2.client.requests").isEmpty)
    }
}

/// An in-memory tracer that propagates its context as W3C Trace Context (`traceparent`, `tracestate`), the way
/// swift-otel's propagator does: the IDs are W3C-shaped hex (32 and 16 digits).
struct W3CTestTracer: Tracer {
    let inner = InMemoryTracer(
        idGenerator: .init(
            nextTraceID: { (0..<2).map { _ in String(format: "%016llx", UInt64.random(in: 1...UInt64.max)) }.joined() },
            nextSpanID: { String(format: "%016llx", UInt64.random(in: 1...UInt64.max)) }
        )
    )

    var finishedSpans: [FinishedInMemorySpan] { inner.finishedSpans }

    func startSpan<Instant: TracerInstant>(
        _ operationName: String,
        context: @autoclosure () -> InstrumentationContext,
        ofKind kind: SpanKind,
        at instant: @autoclosure () -> Instant,
        function: String,
        file fileID: String,
        line: UInt
    ) -> InMemorySpan {
        inner.startSpan(operationName, context: context(), ofKind: kind, at: instant(), function: function, file: fileID, line: line)
    }

    func forceFlush() {}

    func inject<Carrier, Inject: Injector>(_ context: InstrumentationContext, into carrier: inout Carrier, using injector: Inject)
    where Inject.Carrier == Carrier {
        guard let span = context.inMemorySpanContext else { return }
        injector.inject("00-\(span.traceID)-\(span.spanID)-01", forKey: "traceparent", into: &carrier)
    }

    func extract<Carrier, Extract: Extractor>(_ carrier: Carrier, into context: inout InstrumentationContext, using extractor: Extract)
    where Extract.Carrier == Carrier {
        guard let value = extractor.extract(key: "traceparent", from: carrier) else { return }
        let parts = value.split(separator: "-")
        guard parts.count == 4, parts[0] == "00", parts[1].count == 32, parts[2].count == 16 else { return }
        context.inMemorySpanContext = InMemorySpanContext(traceID: String(parts[1]), spanID: String(parts[2]), parentSpanID: nil)
    }
}
