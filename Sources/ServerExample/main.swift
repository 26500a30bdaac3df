// A short ServerSession example: "hello" for every path, `/echo` streams the request body back, and
// `/stream` writes a body in pieces and ends it with trailers.   Usage: ServerExample [port [cert.pem key.pem]]
// (with a certificate and key it serves TLS, ALPN h2).
import HTTPTypes
import NGHTTP2Async

let arguments = Array(CommandLine.arguments.dropFirst())
let port = arguments.first.flatMap { Int($0) } ?? 8080
var configuration = ServerSession.Configuration()
configuration.maxConcurrentStreams = 1_000  // one client may run up to 1,000 requests at once (the default is 100)
if arguments.count == 3 {
    configuration.tls = .makeServerConfiguration(certificateChain: .file(arguments[1]), privateKey: .file(arguments[2]))
}
// "hello" needs no waiting: the immediate handler answers it on the event loop, without a task per request. The
// other paths return nil there and go to the handler.
let hello = ServerSession.Response(status: .ok, headers: [.contentType: "text/plain"], body: .text("hello\n"))
let immediate: ServerSession.ImmediateHandler = { request in
    request.path == "/echo" || request.path == "/stream" ? nil : hello
}
let server = try await ServerSession.bind(host: "127.0.0.1", port: port, configuration: configuration, immediateHandler: immediate) { request in
    switch request.path {
    case "/echo":
        return ServerSession.Response(status: .ok, body: .stream(request.body))
    case "/stream":
        return ServerSession.Response(status: .ok, headers: [.contentType: "text/plain"], body: .writer { writer in
            for line in ["one\n", "two\n", "three\n"] { try await writer.write(line) }
            try await writer.finish(trailers: [HTTPField.Name("x-lines")!: "3"])
        })
    default:
        return ServerSession.Response(status: .ok, headers: [.contentType: "text/plain"], body: .text("hello\n"))
    }
}
print("listening on \(configuration.tls == nil ? "http" : "https")://127.0.0.1:\(server.port)")
try await server.run()
