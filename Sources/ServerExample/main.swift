// A short ServerSession example: "hello" for every path, `/echo` streams the request body back, and
// `/stream` writes a body in pieces and ends it with trailers.   Usage: ServerExample [port]
import HTTPTypes
import NGHTTP2Async

let port = CommandLine.arguments.dropFirst().first.flatMap { Int($0) } ?? 8080
let server = try await ServerSession.bind(host: "127.0.0.1", port: port) { request in
    switch request.path {
    case "/echo":
        return ServerResponse(status: .ok, body: .stream(request.body))
    case "/stream":
        return ServerResponse(status: .ok, headers: [.contentType: "text/plain"], body: .writer { writer in
            for line in ["one\n", "two\n", "three\n"] { try await writer.write(line) }
            try await writer.finish(trailers: [HTTPField.Name("x-lines")!: "3"])
        })
    default:
        return ServerResponse(status: .ok, headers: [.contentType: "text/plain"], body: .text("hello\n"))
    }
}
print("listening on http://127.0.0.1:\(server.port)")
try await server.run()
