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

    @Test func theImmediateHandlerAnswersWhatItCanAndLeavesTheRestToTheHandler() async throws {
        let server = try await ServerSession.bind(
            port: 0,
            immediateHandler: { request in
                guard request.path.hasPrefix("/now") else { return nil }
                let header = request.headers[HTTPField.Name("x-tag")!] ?? "-"
                return ServerSession.Response(status: .accepted, headers: [.contentType: "text/plain"], body: .text("now \(request.path) \(header)"))
            },
            handler: { request in
                try await Task.sleep(for: .milliseconds(1))
                return ServerSession.Response(body: .text("task \(request.path)"))
            }
        )
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<100 {
                group.addTask {
                    let path = index.isMultiple(of: 2) ? "/now\(index)" : "/later\(index)"
                    let response = try await client.get(path, headers: [HTTPField.Name("x-tag")!: "t\(index)"])
                    if index.isMultiple(of: 2) {
                        #expect(response.status == .accepted)
                        #expect(try await response.text() == "now \(path) t\(index)")
                    } else {
                        #expect(response.status == .ok)
                        #expect(try await response.text() == "task \(path)")
                    }
                }
            }
            try await group.waitForAll()
        }
        await client.close()
        await server.close()
    }

    /// A body that a writer produces (or the request body streamed back) still goes out from a task of its own.
    @Test func anImmediateResponseStreamsAWriterBodyWithTrailersAndEchoesARequestBody() async throws {
        let server = try await ServerSession.bind(
            port: 0,
            immediateHandler: { request in
                switch request.path {
                case "/echo":
                    return ServerSession.Response(body: .stream(request.body))
                case "/lines":
                    return ServerSession.Response(body: .writer { writer in
                        for line in ["one\n", "two\n"] { try await writer.write(line) }
                        try await writer.finish(trailers: [HTTPField.Name("x-lines")!: "2"])
                    })
                default:
                    return nil
                }
            },
            handler: { _ in ServerSession.Response(status: .notFound) }
        )
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
        let lines = try await client.get("/lines")
        #expect(try await lines.text() == "one\ntwo\n")
        #expect(lines.trailers?[HTTPField.Name("x-lines")!] == "2")
        let payload = [UInt8](repeating: 5, count: 300_000)
        let echoed = try await client.post("/echo", body: .bytes(payload))
        #expect(try await echoed.bytes(upTo: 1 << 20) == payload)
        #expect(try await client.get("/other").status == .notFound)
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
