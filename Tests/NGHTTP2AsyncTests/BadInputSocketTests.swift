import Testing
import Foundation
import NIOCore
import NIOPosix
import HTTPTypes
@testable import NGHTTP2Async

/// Bad input on a raw TCP connection to our ServerSession: the server answers with GOAWAY and closes that
/// connection, and keeps serving every other one.
@Suite(.timeLimit(.minutes(2)))
struct BadInputSocketTests {
    static let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

    /// Requests seen by the handler with an `x-big` header (to check oversized ones never reach it).
    final class Seen: @unchecked Sendable {
        private let lock = NSLock()
        private var sizes: [Int] = []
        func add(_ size: Int) { lock.withLock { sizes.append(size) } }
        var all: [Int] { lock.withLock { sizes } }
    }

    /// HTTP/2 only: the bytes here are judged as HTTP/2 (with HTTP/1.1 served, a connection that does not start with
    /// the preface is HTTP/1.1; `HTTP1ServerTests` covers its bad input).
    static func startServer(seen: Seen = Seen()) async throws -> ServerSession {
        var configuration = ServerSession.Configuration()
        configuration.protocols = .http2Only
        return try await ServerSession.bind(host: "127.0.0.1", port: 0, configuration: configuration) { request in
            if let big = request.headers[HTTPField.Name("x-big")!] { seen.add(big.utf8.count) }
            return ServerSession.Response(status: .ok, headers: [.contentType: "text/plain"], body: .text("ok \(request.path)"))
        }
    }

    /// A request on `client` that must succeed.
    static func expectWorking(_ client: ClientSession, _ path: String = "/ping", sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let response = try await client.get(path)
        #expect(response.status == .ok, sourceLocation: sourceLocation)
        #expect(try await response.text() == "ok \(path)", sourceLocation: sourceLocation)
    }

    /// The server's connection count reaches `count` within a few seconds.
    static func expectConnectionCount(_ server: ServerSession, _ count: Int, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let deadline = ContinuousClock.now + .seconds(5)
        while server.connectionCount != count, ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(10))
        }
        #expect(server.connectionCount == count, "open connections on the server", sourceLocation: sourceLocation)
    }

    @Test func garbageGetsGoawayAndClose() async throws {
        let server = try await Self.startServer()
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
        try await Self.expectWorking(client, "/before")

        // Not a preface at all.
        var garbage = payload(200, seed: 9)
        garbage[0] = 0x16  // (not "P")
        let raw = try await RawConnection.connect(port: server.port)
        try await raw.send(garbage)
        let closedByServer = await raw.waitForClose(timeout: .seconds(5))
        #expect(closedByServer, "the server did not close the connection")
        let frames = RawFrame.parse(raw.received)
        #expect(frames.first?.type == 0x4, "the server starts with SETTINGS: \(frames)")
        let goaway = frames.first { $0.type == 0x7 }
        #expect(goaway != nil, "no GOAWAY in \(raw.received.count) bytes: \(frames)")
        #expect(goaway?.streamID == 0)
        #expect(goaway.map { $0.payload.count >= 8 } == true)
        #expect(goaway?.goawayErrorCode == 0x1, "GOAWAY error code")
        #expect(frames.last?.type == 0x7, "nothing after the GOAWAY: \(frames)")

        // A valid preface, then garbage where the SETTINGS frame should be.
        let raw2 = try await RawConnection.connect(port: server.port)
        try await raw2.send(Self.preface + payload(300, seed: 10))
        #expect(await raw2.waitForClose(timeout: .seconds(5)), "the server did not close the connection")
        let frames2 = RawFrame.parse(raw2.received)
        let goaway2 = frames2.first { $0.type == 0x7 }
        #expect(goaway2 != nil, "no GOAWAY: \(frames2)")
        #expect(goaway2.map { $0.goawayErrorCode != 0 } == true, "a GOAWAY for bad input carries an error: \(frames2)")

        // The other connection kept working, and new ones do too.
        try await Self.expectWorking(client, "/after")
        let fresh = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
        try await Self.expectWorking(fresh, "/fresh")
        await fresh.close()
        try await Self.expectConnectionCount(server, 1)
        await client.close()
        await server.close()
    }

    @Test func http1RequestGetsProtocolErrorGoaway() async throws {
        let server = try await Self.startServer()
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
        try await Self.expectWorking(client, "/before")

        let raw = try await RawConnection.connect(port: server.port)
        try await raw.send(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8))
        #expect(await raw.waitForClose(timeout: .seconds(5)), "the server did not close the connection")
        let frames = RawFrame.parse(raw.received)
        let goaway = frames.first { $0.type == 0x7 }
        #expect(goaway != nil, "no GOAWAY in \(raw.received.count) bytes: \(frames)")
        #expect(goaway?.streamID == 0)
        #expect(goaway?.goawayLastStreamID == 0, "no stream was processed")
        #expect(goaway?.goawayErrorCode == 0x1, "PROTOCOL_ERROR expected")
        #expect(!raw.received.starts(with: Array("HTTP/1.1".utf8)), "an HTTP/2-only server does not answer in HTTP/1.1")

        try await Self.expectWorking(client, "/after")
        try await Self.expectConnectionCount(server, 1)
        await client.close()
        await server.close()
    }

    @Test func truncatedPrefaceThenClose() async throws {
        let server = try await Self.startServer()
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
        try await Self.expectWorking(client, "/before")

        for cut in [1, 10, Self.preface.count - 1] {
            let raw = try await RawConnection.connect(port: server.port)
            try await raw.send(Array(Self.preface[..<cut]))
            try await Task.sleep(for: .milliseconds(20))
            await raw.close()
        }
        // Also a complete preface and half a SETTINGS frame.
        let raw = try await RawConnection.connect(port: server.port)
        try await raw.send(Self.preface + [0, 0, 6, 0x4, 0, 0, 0])
        try await Task.sleep(for: .milliseconds(20))
        await raw.close()

        try await Self.expectConnectionCount(server, 1)
        try await Self.expectWorking(client, "/after")
        let fresh = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
        try await Self.expectWorking(fresh, "/fresh")
        await fresh.close()
        await client.close()
        await server.close()
    }

    /// A header block above the advertised SETTINGS_MAX_HEADER_LIST_SIZE (32 KiB) gets 431 without reaching the
    /// handler; the connection goes on.
    @Test func oversizedHeaderListGets431() async throws {
        let seen = Seen()
        let server = try await Self.startServer(seen: seen)
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
        try await Self.expectWorking(client, "/before")

        let big = String(repeating: "a", count: 40_000)
        let rejected = try await client.get("/big", headers: [HTTPField.Name("x-big")!: big])
        #expect(rejected.status.code == 431)
        _ = try await rejected.bytes()
        // Same connection, normal request.
        try await Self.expectWorking(client, "/after")

        // Below the limit is fine (20,000 + name + 32 per field is well under 32 KiB).
        let medium = String(repeating: "b", count: 20_000)
        let accepted = try await client.get("/medium", headers: [HTTPField.Name("x-big")!: medium])
        #expect(accepted.status == .ok)
        #expect(try await accepted.text() == "ok /medium")

        // Many small fields adding up to more than the limit count too.
        var many: HTTPFields = [:]
        for index in 0..<400 { many.append(HTTPField(name: HTTPField.Name("x-field-\(index)")!, value: String(repeating: "v", count: 60))) }
        let rejectedMany = try await client.get("/many", headers: many)
        #expect(rejectedMany.status.code == 431)
        try await Self.expectWorking(client, "/after-many")

        // curl too.
        let curl = try await Peers.run(
            "curl",
            ["--http2-prior-knowledge", "-s", "-S", "-o", "/dev/null", "-w", "%{http_code}", "-H", "x-big: \(big)", "http://127.0.0.1:\(server.port)/curl"],
            timeout: .seconds(30)
        )
        #expect(curl.status == 0, "curl failed: \(curl.stderr)")
        #expect(curl.text == "431")

        #expect(seen.all == [20_000], "the handler saw x-big headers of sizes \(seen.all)")
        try await Self.expectWorking(client, "/end")
        await client.close()
        await server.close()
    }
}
