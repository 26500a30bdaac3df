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
                return ServerSession.Response(status: .ok, body: .stream(request.body))
            }
            return ServerSession.Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: .text("hello \(request.path)"))
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

    /// Requests without a body share one finished reader; bodies given whole (small, larger than a stream window,
    /// with trailers) are sent from the stream's context. Many at once on one connection, and nothing is left over.
    @Test func bodilessRequestsAndWholeBodies() async throws {
        let large = ByteBuffer(repeating: 9, count: 200_000)
        let server = try await ServerSession.bind(port: 0) { request in
            let body = try await request.body.collect(upTo: 1 << 20)
            let again = try await request.body.read()
            let summary = "\(request.path) \(body.readableBytes) \(again == nil) \(request.body.isFinished) \(request.trailers == nil)"
            switch request.path {
            case "/large": return ServerSession.Response(body: .bytes(large))
            case "/trailers": return ServerSession.Response(body: .text(summary, trailers: [HTTPField.Name("x-end")!: "yes"]))
            case "/empty": return ServerSession.Response(body: .bytes(ByteBuffer()))
            default: return ServerSession.Response(body: .text(summary))
            }
        }
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<200 {
                group.addTask {
                    let response = try await client.get("/r\(index)")
                    #expect(try await response.text() == "/r\(index) 0 true true true")
                }
            }
            try await group.waitForAll()
        }
        let posted = try await client.post("/p", body: .bytes([1, 2, 3]))
        #expect(try await posted.text() == "/p 3 true true true")
        let largeResponse = try await client.get("/large")
        #expect(try await largeResponse.bytes(upTo: 1 << 20) == [UInt8](repeating: 9, count: 200_000))
        let withTrailers = try await client.get("/trailers")
        #expect(try await withTrailers.text() == "/trailers 0 true true true")
        #expect(withTrailers.trailers?[HTTPField.Name("x-end")!] == "yes")
        let empty = try await client.get("/empty")
        #expect(try await empty.bytes().isEmpty)
        for connection in server.connections.all {
            let stats = try await connection.statistics()
            #expect(stats.openStreams == 0 && stats.sendingBodies == 0)
        }
        await client.close()
        await server.close()
    }
}
