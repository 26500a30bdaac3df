import HTTPTypes
import NIOCore
import Testing
@testable import NGHTTP2Async

/// Calls the API cannot accept throw ``HTTP2Error`` instead of stopping the process.
@Suite struct APIMisuseTests {
    @Test("reading zero bytes throws invalidArgument, and the body can still be read")
    func readingZeroBytesThrows() async throws {
        let server = try await ServerSession.bind(port: 0) { _ in ServerSession.Response(body: .text("body")) }
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
        let response = try await client.get("/")
        for count in [0, -1] {
            do {
                _ = try await response.body.read(upTo: count)
                Issue.record("read(upTo: \(count)) returned")
            } catch let error as HTTP2Error {
                #expect(error.code == .invalidArgument, "\(error)")
            }
        }
        #expect(try await response.text() == "body")
        await client.close()
        await server.close()
    }

    @Test("while one task waits in a read, a second read throws readerBusy and the first gets the body")
    func aSecondConcurrentReadThrowsReaderBusy() async throws {
        let gate = Gate()
        let server = try await ServerSession.bind(port: 0) { _ in
            ServerSession.Response(body: .writer { writer in
                await gate.wait()
                try await writer.write("late")
                try await writer.finish()
            })
        }
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
        let response = try await client.get("/")
        let body = response.body
        // Should no read be told it is busy, the body is sent after 10 s anyway and the outcomes show it.
        let fallback = Task {
            try await Task.sleep(for: .seconds(10))
            gate.open()
        }
        defer { fallback.cancel() }
        // Whichever read waits first keeps waiting; the other fails at once. The body is sent only after that.
        let outcomes = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<2 {
                group.addTask {
                    do {
                        return try await body.read().map { String(buffer: $0) } ?? "end"
                    } catch let error as HTTP2Error where error.code == .readerBusy {
                        gate.open()
                        return "busy"
                    }
                }
            }
            return try await group.reduce(into: [String]()) { $0.append($1) }
        }
        #expect(outcomes == ["busy", "late"])
        #expect(try await body.read() == nil)
        await client.close()
        await server.close()
    }

    @Test("an informational response with a final status throws invalidArgument and sends nothing")
    func informationalWithAFinalStatusThrows() async throws {
        let thrown = LockedState<HTTP2Error?>(nil)
        let server = try await ServerSession.bind(port: 0) { request in
            do {
                try request.sendInformational(HTTPResponse(status: .ok))
            } catch let error as HTTP2Error {
                thrown.withLock { $0 = error }
            }
            return ServerSession.Response(status: .accepted, body: .text("final"))
        }
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
        let response = try await client.get("/")
        #expect(response.status == .accepted)
        #expect(response.informational.isEmpty)
        #expect(try await response.text() == "final")
        #expect(thrown.withLock { $0?.code } == .invalidArgument)
        await client.close()
        await server.close()
    }
}
