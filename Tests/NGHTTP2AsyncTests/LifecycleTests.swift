import Testing
import Foundation
import NIOCore
import HTTPTypes
import NGHTTP2
@testable import NGHTTP2Async

/// GOAWAY, graceful shutdown, cancellation, handler failures, trailers, informational responses, leaks.
@Suite struct LifecycleTests {
    @Test func gracefulShutdownFinishesStreamsInFlightAndRefusesNewOnes() async throws {
        let started = ManagedCounter()
        // The requests in flight stay in flight until the late request was refused (a fixed sleep lost that race
        // when the machine was busy: the connection had closed by then).
        let release = Gate()
        let server = try await ServerSession.bind(port: 0) { request in
            started.add(1)
            await release.wait()
            return ServerSession.Response(status: .ok, body: .text(request.path))
        }
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
        let inFlight = Task {
            try await withThrowingTaskGroup(of: String.self) { group in
                for index in 0..<10 { group.addTask { try await client.get("/\(index)").text() } }
                return try await group.reduce(into: [String]()) { $0.append($1) }
            }
        }
        while started.value < 10 { try await Task.sleep(for: .milliseconds(5)) }
        let closing = Task { await server.close(gracePeriod: .seconds(5)) }
        while await client.isRequestAllowed { try await Task.sleep(for: .milliseconds(5)) }
        // After the GOAWAY notice: a new request is refused before it is sent, and says it is safe to retry.
        do {
            _ = try await client.get("/late")
            Issue.record("a request after GOAWAY succeeded")
        } catch let error as HTTP2Error {
            #expect(error.isRetrySafe, "\(error)")
        }
        release.open()
        let bodies = try await inFlight.value
        #expect(bodies.sorted() == (0..<10).map { "/\($0)" }.sorted())
        await closing.value
        await client.waitUntilClosed()
        #expect(server.connectionCount == 0)
    }

    @Test func cancellingARequestTaskResetsOnlyItsStream() async throws {
        let cancelled = ManagedCounter()
        let started = ManagedCounter()
        let server = try await ServerSession.bind(port: 0) { request in
            if request.path == "/slow" {
                started.add(1)
                do {
                    try await Task.sleep(for: .seconds(10))
                } catch {
                    cancelled.add(1)
                    throw error
                }
            }
            return ServerSession.Response(status: .ok, body: .text("fast"))
        }
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
        let slow = Task { try await client.get("/slow") }
        // Cancelled once the server runs its handler: a fixed 100 ms sleep is not enough on a busy machine, where the
        // request may be cancelled before any handler runs to be cancelled.
        while started.value == 0 { try await Task.sleep(for: .milliseconds(5)) }
        slow.cancel()
        await #expect(throws: CancellationError.self) { _ = try await slow.value }
        #expect(try await client.get("/fast").text() == "fast")
        for _ in 0..<1000 where cancelled.value == 0 { try await Task.sleep(for: .milliseconds(5)) }
        #expect(cancelled.value == 1, "the server's handler task was cancelled by the RST_STREAM")
        await client.close()
        await server.close()
    }

    @Test func aThrowingHandlerGives500AndHarmsNothingElse() async throws {
        struct Failure: Error {}
        let server = try await ServerSession.bind(port: 0) { request in
            switch request.path {
            case "/throw": throw Failure()
            case "/throw-mid-body":
                return ServerSession.Response(status: .ok, body: .writer { writer in
                    try await writer.write("partial")
                    throw Failure()
                })
            default: return ServerSession.Response(status: .ok, body: .text("fine"))
            }
        }
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
        #expect(try await client.get("/throw").status == .internalServerError)
        let midBody = try await client.get("/throw-mid-body")
        #expect(midBody.status == .ok)
        await #expect(throws: HTTP2Error.streamReset(streamID: midBody.streamID, errorCode: .internalError, byPeer: true)) {
            _ = try await midBody.bytes()
        }
        #expect(try await client.get("/ok").text() == "fine")
        await client.close()
        await server.close()
    }

    @Test func trailersBothWaysAndInformationalResponses() async throws {
        let server = try await ServerSession.bind(port: 0) { request in
            try request.sendInformational(HTTPResponse(status: .earlyHints, headerFields: [HTTPField.Name("link")!: "</a.css>; rel=preload"]))
            let body = try await request.bytes()
            let checksum = request.trailers?[HTTPField.Name("x-checksum")!] ?? "none"
            return ServerSession.Response(
                status: .ok,
                body: .bytes(body, trailers: [HTTPField.Name("x-request-checksum")!: checksum, HTTPField.Name("grpc-status")!: "0"])
            )
        }
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
        let body = payload(200_000)
        let response = try await client.post("/", body: .bytes(body, trailers: [HTTPField.Name("x-checksum")!: "abc"]))
        #expect(response.status == .ok)
        #expect(response.informational.map(\.status) == [.earlyHints])
        #expect(try await response.bytes() == body)
        #expect(response.trailers?[HTTPField.Name("x-request-checksum")!] == "abc")
        #expect(response.trailers?[HTTPField.Name("grpc-status")!] == "0")
        await client.close()
        await server.close()
    }

    @Test func theServerMayAnswerBeforeReadingTheRequestBody() async throws {
        let server = try await ServerSession.bind(port: 0) { _ in ServerSession.Response(status: .accepted, body: .text("early")) }
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
        let response = try await client.post("/", body: .bytes(payload(4 << 20)))
        #expect(response.status == .accepted)
        #expect(try await response.text() == "early")
        #expect(try await client.get("/again").text() == "early")
        await client.close()
        await server.close()
    }

    @Test func pingMeasuresTheRoundTrip() async throws {
        let server = try await ServerSession.bind(port: 0) { _ in ServerSession.Response() }
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
        let rtt = try await client.ping()
        #expect(rtt > .zero && rtt < .seconds(5))
        await client.close()
        await server.close()
    }

    @Test func oneShotGetAndPost() async throws {
        let server = try await ServerSession.bind(port: 0) { request in
            if request.method == .post { return ServerSession.Response(body: .bytes(try await request.bytes())) }
            return ServerSession.Response(headers: [.contentType: "application/json"], body: .text(#"{"path":"\#(request.path)"}"#))
        }
        struct Reply: Decodable { let path: String }
        let response = try await HTTP2.get("http://127.0.0.1:\(server.port)/get?x=1")
        #expect(try await response.json(as: Reply.self).path == "/get?x=1")
        let posted = try await HTTP2.post("http://127.0.0.1:\(server.port)/post", body: .text("data"))
        #expect(try await posted.text() == "data")
        #expect(server.connectionCount == 1, "one-shot calls share HTTP2Client.shared's connection")
        var configuration = HTTP2Client.Configuration()
        configuration.decompression = .disabled
        let own = try await HTTP2.request(.get, "http://127.0.0.1:\(server.port)/own", configuration: configuration)
        #expect(try await own.json(as: Reply.self).path == "/own")
        for _ in 0..<400 where server.connectionCount > 1 { try await Task.sleep(for: .milliseconds(5)) }
        #expect(server.connectionCount == 1, "a call with its own configuration closes its connection after the response")
        await #expect(throws: HTTP2Error.self) { _ = try await HTTP2.get("ftp://127.0.0.1/") }
        await server.close()
    }

    @Test func noPerStreamStateSurvivesManySequentialRequests() async throws {
        let server = try await ServerSession.bind(port: 0) { _ in ServerSession.Response(body: .text("ok")) }
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
        for _ in 0..<100_000 {
            let response = try await client.get("/")
            _ = try await response.bytes()
        }
        let clientStats = try await client.connection.statistics()
        #expect(clientStats.openStreams == 0 && clientStats.sendingBodies == 0)
        for connection in server.connections.all {
            let stats = try await connection.statistics()
            #expect(stats.openStreams == 0 && stats.sendingBodies == 0)
        }
        await client.close()
        await server.close()
    }
}

/// Holds an object weakly, across tasks.
final class WeakBox: @unchecked Sendable {
    weak var value: AnyObject?
}

/// Connection handlers (and the libnghttp2 session each owns) are freed when their connection closes, on both sides.
@Suite struct ConnectionLeakTests {
    @Test func handlersAreFreedAfterTheirConnectionsClose() async throws {
        let server = try await ServerSession.bind(port: 0) { _ in ServerSession.Response(status: .ok, body: .text("hi")) }
        var clientHandlers: [WeakBox] = []
        var serverHandlers: [WeakBox] = []
        for _ in 0..<3 {
            let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
            #expect(try await client.get("/").text() == "hi")
            let box = WeakBox()
            try await client.connection.eventLoop.submit { box.value = client.connection.handler.value }.get()
            clientHandlers.append(box)
            for reference in server.connections.all {
                let serverBox = WeakBox()
                try await reference.eventLoop.submit { serverBox.value = reference.handler.value }.get()
                serverHandlers.append(serverBox)
            }
            await client.close()
        }
        while server.connectionCount > 0 { try await Task.sleep(for: .milliseconds(5)) }
        let deadline = ContinuousClock.now + .seconds(5)
        while (clientHandlers + serverHandlers).contains(where: { $0.value != nil }), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(clientHandlers.allSatisfy { $0.value == nil }, "a client connection handler outlived its connection")
        #expect(serverHandlers.allSatisfy { $0.value == nil }, "a server connection handler outlived its connection")
        await server.close()
    }
}

/// A handler runs inside libnghttp2's receive until it first suspends; what it triggers there on its connection
/// (here a graceful shutdown, which flushes) must wait for the read burst to end rather than break the session.
@Suite struct HandlerStartedInsideReceiveTests {
    @Test func aShutdownStartedBeforeTheFirstSuspensionStillAnswers() async throws {
        let server = try await ServerSession.bind(port: 0) { request in
            if request.path == "/last" { (request.connection as! ConnectionReference).execute { $0.beginGracefulShutdown() } }
            return ServerSession.Response(status: .ok, body: .text(request.path))
        }
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
        #expect(try await client.get("/first").text() == "/first")
        #expect(try await client.get("/last").text() == "/last")
        await client.waitUntilClosed()
        await server.close()
    }
}
