import FuzzSupport
import HTTPTypes
import NGHTTP2
import NIOCore
import NIOEmbedded
@testable import NGHTTP2Async

/// The server's `ConnectionHandler` (with its state machine, stream table, readers and writers) on an
/// `EmbeddedChannel`, fed what a client sends as channel reads: byte 0 picks the read size, the rest follows the
/// connection preface, which the harness sends first. Each read is one read burst; the event loop runs after each.
///
/// The handler answers "hello" at once, `/echo` with the request body, and `/stream` from a writer.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzServerConnection(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    guard let input = FuzzInput(start, count) else { return 0 }
    var configuration = ServerSession.Configuration()
    configuration.logger.logLevel = .critical
    let handler = try! ConnectionHandler(
        role: .server(handler: { request in
            switch request.path {
            case "/echo":
                return ServerSession.Response(body: .bytes(try await request.bytes(upTo: 1 << 20)))
            case "/stream":
                return ServerSession.Response(body: .writer { writer in
                    try await writer.write("one\n")
                    try await writer.write([UInt8](repeating: 0x61, count: 70_000))
                    try await writer.finish(trailers: [HTTPField.Name("x-done")!: "1"])
                })
            default:
                return ServerSession.Response(headers: [.contentType: "text/plain"], body: .text("hello\n"))
            }
        }),
        configuration: configuration.connectionConfiguration,
        delegate: nil
    )
    let channel = EmbeddedChannel()
    try! channel.pipeline.syncOperations.addHandler(handler)
    try! channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    func drain() {
        while (try? channel.readOutbound(as: ByteBuffer.self)) ?? nil != nil {}
    }
    drain()
    input.forEachChunk(prefix: clientMagic) { chunk in
        guard channel.isActive else { return false }
        do {
            try channel.writeInbound(channel.allocator.buffer(bytes: chunk))
        } catch {
            return false
        }
        channel.pipeline.fireChannelReadComplete()
        channel.embeddedEventLoop.run()
        drain()
        return true
    }
    // Let the handlers' tasks and the timers finish, then close.
    channel.embeddedEventLoop.run()
    channel.embeddedEventLoop.advanceTime(by: .seconds(120))
    drain()
    _ = try? channel.finish(acceptAlreadyClosed: true)
    channel.embeddedEventLoop.run()
    return 0
}
