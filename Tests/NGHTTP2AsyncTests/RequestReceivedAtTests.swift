import Testing
import Foundation
import HTTPTypes
import NIOConcurrencyHelpers
@testable import NGHTTP2Async

/// `ServerSession.Request.receivedAt`: when the read that brought a request's head returned.
@Suite(.timeLimit(.minutes(1)))
struct RequestReceivedAtTests {
    /// What the handler saw of each request: its `receivedAt`, and the clock when the handler ran.
    final class Seen: Sendable {
        private let seen = NIOLockedValueBox<[String: (receivedAt: ContinuousClock.Instant, handled: ContinuousClock.Instant)]>([:])
        func add(_ path: String, _ receivedAt: ContinuousClock.Instant) {
            let handled = ContinuousClock.now
            seen.withLockedValue { $0[path] = (receivedAt, handled) }
        }
        subscript(path: String) -> (receivedAt: ContinuousClock.Instant, handled: ContinuousClock.Instant)? { seen.withLockedValue { $0[path] } }
    }

    private static func startServer(_ seen: Seen) async throws -> ServerSession {
        try await ServerSession.bind(host: "127.0.0.1", port: 0) { request in
            seen.add(request.path, request.receivedAt)
            return ServerSession.Response(headers: [.contentType: "text/plain"], body: .text("ok"))
        }
    }

    private static func get(_ stream: UInt32, _ path: String) -> RawFrame {
        .headers(stream, HPACK.block([(":method", "GET"), (":scheme", "http"), (":path", path), (":authority", "127.0.0.1")]), endStream: true)
    }

    /// Reads frames until `count` responses have ended.
    private static func awaitResponses(_ raw: RawConnection, _ count: Int) async {
        var ended = 0
        while ended < count, case .frame(let frame) = await raw.nextFrame(timeout: .seconds(10)) {
            if frame.type == FrameType.data || frame.type == FrameType.headers, frame.has(FrameFlag.endStream) { ended += 1 }
        }
        #expect(ended == count, "responses")
    }

    @Test func requestsThatOneReadBroughtShareOneInstantAfterTheySentAndBeforeTheirHandlerRan() async throws {
        let seen = Seen()
        let server = try await Self.startServer(seen)
        let raw = try await RawConnection.connect(port: server.port)
        let beforeSending = ContinuousClock.now
        // The preface, SETTINGS and three requests in one write: one TCP segment, one read on the server.
        try await raw.send(BadInputSocketTests.preface + wire(.settings(), Self.get(1, "/a"), Self.get(3, "/b"), Self.get(5, "/c")))
        await Self.awaitResponses(raw, 3)
        let a = try #require(seen["/a"]), b = try #require(seen["/b"]), c = try #require(seen["/c"])
        #expect(a.receivedAt == b.receivedAt && b.receivedAt == c.receivedAt, "one read, one instant")
        #expect(beforeSending <= a.receivedAt, "no earlier than the request was sent")
        for request in [a, b, c] { #expect(request.receivedAt <= request.handled, "no later than its handler ran") }
        // A request of a later read has a later instant.
        try await raw.send(wire(Self.get(7, "/d")))
        await Self.awaitResponses(raw, 1)
        let d = try #require(seen["/d"])
        #expect(a.handled < d.receivedAt && d.receivedAt <= d.handled)
        await raw.close()
        await server.close()
    }

    @Test func anHTTP1RequestFromCurlIsReceivedAfterItWasSentAndBeforeItsHandlerRan() async throws {
        let seen = Seen()
        let server = try await Self.startServer(seen)
        let beforeSending = ContinuousClock.now
        let result = try await Peers.run("curl", ["-sS", "--http1.1", "http://127.0.0.1:\(server.port)/h1"])
        #expect(result.text == "ok")
        let request = try #require(seen["/h1"])
        #expect(beforeSending <= request.receivedAt && request.receivedAt <= request.handled)
        await server.close()
    }
}
