// A swift-nio-http2 hello-world server, the peer of swift-nghttp2's ServerExample in `scripts/bench-peers`.
//
//     NIOHTTP2HelloServer PORT [CERT KEY]
//
// Every request gets status 200, `content-type: text/plain` and the body "hello\n". Without CERT and KEY it speaks
// h2c with prior knowledge; with them, TLS (NIOSSL) with ALPN h2. The setup is the standard one:
// `configureHTTP2Pipeline` (inline stream multiplexer), one child channel per stream with
// `HTTP2FramePayloadToHTTP1ServerCodec` and a response handler, on `MultiThreadedEventLoopGroup.singleton` (all cores).
import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOPosix
import NIOSSL

#if canImport(Glibc)
import Glibc
#endif

final class HelloHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private static let headers: HTTPHeaders = ["content-type": "text/plain", "content-length": "6"]
    private static let body = ByteBuffer(string: "hello\n")

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .end = self.unwrapInboundIn(data) else { return }
        let head = HTTPResponseHead(version: .http2, status: .ok, headers: Self.headers)
        context.write(self.wrapOutboundOut(.head(head)), promise: nil)
        context.write(self.wrapOutboundOut(.body(.byteBuffer(Self.body))), promise: nil)
        context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
    }
}

let arguments = CommandLine.arguments
guard arguments.count == 2 || arguments.count == 4, let port = Int(arguments[1]) else {
    print("usage: NIOHTTP2HelloServer PORT [CERT KEY]")
    exit(2)
}

let sslContext: NIOSSLContext?
if arguments.count == 4 {
    var tls = TLSConfiguration.makeServerConfiguration(
        certificateChain: try NIOSSLCertificate.fromPEMFile(arguments[2]).map { .certificate($0) },
        privateKey: .privateKey(try NIOSSLPrivateKey(file: arguments[3], format: .pem))
    )
    tls.applicationProtocols = ["h2"]
    sslContext = try NIOSSLContext(configuration: tls)
} else {
    sslContext = nil
}

let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
    .serverChannelOption(.backlog, value: 256)
    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
    .childChannelInitializer { channel in
        channel.eventLoop.makeCompletedFuture {
            let sync = channel.pipeline.syncOperations
            if let sslContext {
                try sync.addHandler(NIOSSLServerHandler(context: sslContext))
            }
            _ = try sync.configureHTTP2Pipeline(
                mode: .server,
                connectionConfiguration: .init(),
                streamConfiguration: .init()
            ) { stream in
                stream.eventLoop.makeCompletedFuture {
                    try stream.pipeline.syncOperations.addHandler(HTTP2FramePayloadToHTTP1ServerCodec())
                    try stream.pipeline.syncOperations.addHandler(HelloHandler())
                }
            }
        }
    }

let server = try bootstrap.bind(host: "127.0.0.1", port: port).wait()
print("listening on 127.0.0.1:\(port) (\(sslContext == nil ? "h2c" : "TLS, ALPN h2"))")
try server.closeFuture.wait()
