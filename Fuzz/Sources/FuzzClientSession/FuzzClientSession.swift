import FuzzSupport
import NGHTTP2

/// A client `Session` with four requests in flight (no body, a body, a large body, a deferred body with
/// trailers), fed what a server sends: byte 0 picks the read size.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzClientSession(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    guard let input = FuzzInput(start, count) else { return 0 }
    let harness = try! SessionHarness(
        role: .client,
        settings: [Setting(.enablePush, 0), Setting(.initialWindowSize, 1 << 20)],  // as ClientSession
        connectionWindow: 8 << 20
    )
    let session = harness.session
    func request(_ method: String, _ path: String) -> [HeaderField] {
        [[":method", method], [":scheme", "http"], [":authority", "127.0.0.1:8080"], [":path", path], ["user-agent", "fuzz"]]
    }
    _ = try! session.submitRequest(request("GET", "/get"))
    _ = try! session.submitRequest(request("POST", "/post") + [["content-length", "5"]], body: .bytes(Array("hello".utf8)))
    _ = try! session.submitRequest(request("PUT", "/discard"), body: .zeroCopy([UInt8](repeating: 0x63, count: 100_000)))
    _ = try! session.submitRequest(request("POST", "/echo"), body: harness.deferredBody(Array("deferred".utf8)))
    harness.flush()
    input.forEachChunk { harness.receive($0) }
    harness.flush()
    return 0
}
