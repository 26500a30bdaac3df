// A Hummingbird 2 hello-world server, the HTTP/1.1 peer of swift-nghttp2's ServerExample in `scripts/bench`'s `h1`
// section.
//
//     HummingbirdHelloServer PORT
//
// Every request to `/` gets status 200, `content-type: text/plain` and the body "hello\n" over HTTP/1.1 on
// 127.0.0.1 (Hummingbird's default HTTP/1.1 server: NIOHTTP1 with pipelining assistance, on
// `MultiThreadedEventLoopGroup.singleton`, all cores), as ServerExample answers.
import Hummingbird

let port = CommandLine.arguments.dropFirst().first.flatMap { Int($0) } ?? 8080
let router = Router()
router.get("/") { _, _ -> Response in
    Response(
        status: .ok,
        headers: [.contentType: "text/plain"],
        body: ResponseBody(byteBuffer: ByteBuffer(string: "hello\n"))
    )
}
// Hummingbird's default logger (level info: nothing per request).
let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: port)))
print("listening on http://127.0.0.1:\(port)")
try await app.runService()
