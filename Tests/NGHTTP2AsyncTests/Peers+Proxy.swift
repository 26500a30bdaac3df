import Foundation
import NIOCore
import NIOPosix

extension Peers {
    /// tinyproxy (a forward proxy with CONNECT) on a free port of 127.0.0.1, in the foreground with a config written
    /// to `directory`: it accepts clients from 127.0.0.1 only, tunnels only to `connectPorts`, and with `basicAuth`
    /// asks for those credentials (407 without them). Debian's system service (port 8888) is not used.
    static func tinyproxy(
        directory: String,
        connectPorts: [Int],
        basicAuth: (username: String, password: String)? = nil
    ) async throws -> (Running, Int) {
        let port = try await freePort()
        var config = [
            "Port \(port)",
            "Listen 127.0.0.1",
            "Allow 127.0.0.1",
            "MaxClients 20",
            "Timeout 60",
            "LogLevel Critical",
        ]
        config += connectPorts.map { "ConnectPort \($0)" }
        if let basicAuth { config.append("BasicAuth \(basicAuth.username) \(basicAuth.password)") }
        let file = "\(directory)/tinyproxy-\(port).conf"
        try (config.joined(separator: "\n") + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        let running = try await start("tinyproxy", ["-d", "-c", file], waitForPort: port)
        return (running, port)
    }

    /// nghttpd serving `directory` over TLS (ALPN h2) with the test leaf for `localhost` and 127.0.0.1.
    static func nghttpdTLS(directory: String, certificates: TestCertificates, extra: [String] = []) async throws -> (Running, Int) {
        let port = try await freePort()
        let arguments = ["-a", "127.0.0.1", "-d", directory] + extra + ["\(port)", certificates.leafKey, certificates.leafCertificate]
        let running = try await start("nghttpd", arguments, waitForPort: port)
        return (running, port)
    }
}

/// A TCP listener on 127.0.0.1 that accepts connections, reads what they send and never answers: a proxy that hangs.
final class SilentListener: Sendable {
    let channel: any Channel
    var port: Int { channel.localAddress!.port! }

    private init(channel: any Channel) { self.channel = channel }

    static func start() async throws -> SilentListener {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Swallow()) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return SilentListener(channel: channel)
    }

    func stop() async { try? await channel.close() }

    private final class Swallow: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {}
    }
}
