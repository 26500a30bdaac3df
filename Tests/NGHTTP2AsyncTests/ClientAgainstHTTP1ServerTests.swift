import Testing
import Foundation
import NIOCore
@testable import NGHTTP2Async

/// A client that sends the HTTP/2 preface to a server that speaks only HTTP/1.1 learns that, in a typed error, rather
/// than that "the connection closed".
@Suite(.timeLimit(.minutes(2)))
struct ClientAgainstHTTP1ServerTests {
    @Test func pythonsHTTPServerGivesPeerSpeaksHTTP1WithoutRetries() async throws {
        let port = try await Peers.freePort()
        let directory = try Peers.temporaryDirectory()
        let python = try await Peers.start("python3", ["-m", "http.server", "\(port)", "--bind", "127.0.0.1", "--directory", directory], waitForPort: port)
        defer { python.stop() }
        let client = HTTP2Client()
        do {
            _ = try await client.get("http://127.0.0.1:\(port)/")
            Issue.record("an HTTP/1.1 server answered an HTTP/2 request")
        } catch let error as HTTP2Error {
            #expect(error.code == .peerSpeaksHTTP1, "\(error)")
            #expect(error.attempts == nil, "another attempt gets the same answer: \(error)")
            #expect("\(error)".contains("speaks HTTP/1.1"), "\(error)")
        }
        await client.shutdown()
        try? FileManager.default.removeItem(atPath: directory)
    }

    @Test func aStatusLineInAnswerToThePrefaceIsNamedInTheError() async throws {
        let server = try await RawServer.start()
        let accepting = Task {
            let connection = try await server.accept()
            try await connection.send(Array("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n".utf8))
            _ = await connection.waitForClose(timeout: .seconds(10))
        }
        let session = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
        await #expect(throws: HTTP2Error.peerSpeaksHTTP1(statusLine: "HTTP/1.1 400 Bad Request")) {
            _ = try await session.get("/")
        }
        await session.close()
        try await accepting.value
        await server.close()
    }
}
