import Testing
import NIOCore
import HTTPTypes
import NGHTTP2
@testable import NGHTTP2Async

/// Our client against our server, over real sockets on 127.0.0.1.
@Suite struct ClientServerTests {
    @Test func getAndEcho() async throws {
        let server = try await ServerSession.bind(port: 0) { request in
            if request.path == "/echo" {
                return ServerResponse(status: .ok, body: .stream(request.body))
            }
            return ServerResponse(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: .text("hello \(request.path)"))
        }
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
        let response = try await client.get("/x")
        #expect(response.status == .ok)
        #expect(try await response.text() == "hello /x")
        let payload = [UInt8](repeating: 7, count: 3_000_000)
        let echoed = try await client.post("/echo", body: .bytes(payload))
        #expect(try await echoed.bytes(upTo: 10 << 20) == payload)
        await client.close()
        await server.close()
    }
}
