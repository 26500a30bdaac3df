import Testing
import Foundation
import NIOCore
import NIOPosix
import HTTPTypes
import NGHTTP2
@testable import NGHTTP2Async

/// Extended CONNECT (RFC 8441) between our client and our server.
@Suite(.timeLimit(.minutes(2)))
struct ExtendedConnectTests {
    @Test func aServerConfiguredForItAdvertisesEnableConnectProtocolAndHandlersSeeTheProtocol() async throws {
        var configuration = ServerSession.Configuration()
        configuration.enableConnectProtocol = true
        let seen = LockedState<String?>(nil)
        let server = try await ServerSession.bind(port: 0, configuration: configuration) { request in
            seen.withLock {
                $0 = "\(request.method) \(request.extendedConnectProtocol ?? "-") \(request.isConnectTunnel) \(request.scheme ?? "-") \(request.path)"
            }
            return ServerSession.Response(status: .ok, body: .stream(request.body))
        }
        let settings = LockedState<[Setting]>([])
        var clientConfiguration = ClientSession.Configuration()
        clientConfiguration.frameObserver = { direction, frame in
            if direction == .received, case .settings(let received) = frame.payload { settings.withLock { $0 += received } }
        }
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)", configuration: clientConfiguration)
        // Right after connecting the server's SETTINGS may not be in yet: the tunnel waits for them.
        let tunnel = try await client.openTunnel(protocol: "echo", path: "/chat?room=1")
        #expect(settings.withLock { $0 }.contains(Setting(.enableConnectProtocol, 1)))
        try await tunnel.outbound.write("frame")
        #expect(try await tunnel.inbound.readString(count: 5) == "frame")
        try await tunnel.outbound.finish()
        #expect(try await tunnel.inbound.read() == nil)
        #expect(seen.withLock { $0 } == "CONNECT echo false http /chat?room=1")
        await client.close()
        await server.close()
    }

    @Test func aClientDoesNotSendAnExtendedConnectToAServerThatDidNotEnableIt() async throws {
        let requests = LockedState(0)
        let server = try await ServerSession.bind(port: 0) { _ in
            requests.withLock { $0 += 1 }
            return ServerSession.Response(status: .ok)
        }
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
        await #expect(throws: HTTP2Error.extendedConnectNotEnabled) {
            try await client.openTunnel(protocol: "websocket", path: "/")
        }
        #expect(try await client.get("/").status == .ok)
        #expect(requests.withLock { $0 } == 1)
        await client.close()
        await server.close()
    }

    /// A client that sends `:protocol` anyway (through ``ClientSession/execute(_:body:)``) gets its stream reset:
    /// libnghttp2 rejects the field on a server that did not send SETTINGS_ENABLE_CONNECT_PROTOCOL = 1 (RFC 8441 §3).
    @Test func aServerThatDidNotEnableItResetsARequestWithAProtocol() async throws {
        let server = try await ServerSession.bind(port: 0) { _ in ServerSession.Response(status: .ok) }
        let client = try await ClientSession.connect(to: "http://127.0.0.1:\(server.port)")
        var request = HTTPRequest(method: .connect, scheme: "http", authority: "127.0.0.1", path: "/")
        request.extendedConnectProtocol = "websocket"
        let error = await #expect(throws: HTTP2Error.self) { try await client.execute(request) }
        #expect(error?.code == .streamReset && error?.errorCode == .protocolError)
        await client.close()
        await server.close()
    }

    /// Over TLS (ALPN h2) the extended CONNECT carries `:scheme https` and a plain CONNECT tunnels as over h2c.
    @Test func tunnelsWorkOverTLSWithTheSchemeHTTPS() async throws {
        let certificates = try await TestCertificates.shared()
        var configuration = ServerSession.Configuration()
        configuration.enableConnectProtocol = true
        configuration.tls = .makeServerConfiguration(certificateChain: .file(certificates.leafCertificate), privateKey: .file(certificates.leafKey))
        let server = try await ServerSession.bind(port: 0, configuration: configuration) { request in
            let prefix = "\(request.extendedConnectProtocol ?? "tunnel") \(request.scheme ?? "-"):"
            return ServerSession.Response(status: .ok, body: .writer { writer in
                try await writer.write(prefix)
                for try await chunk in request.body { try await writer.write(chunk) }
            })
        }
        var clientConfiguration = ClientSession.Configuration()
        clientConfiguration.tls = .makeClientConfiguration()
        clientConfiguration.tls?.trustRoots = .file(certificates.caCertificate)
        let client = try await ClientSession.connect(to: "https://localhost:\(server.port)", configuration: clientConfiguration)
        for tunnel in [try await client.openTunnel(protocol: "echo", path: "/"), try await client.openTunnel(to: "127.0.0.1:7")] {
            try await tunnel.outbound.write("abc")
            try await tunnel.outbound.finish()
            var text = ""
            for try await var chunk in tunnel.inbound { text += chunk.readString(length: chunk.readableBytes) ?? "" }
            #expect(text == (tunnel.streamID == 1 ? "echo https:abc" : "tunnel -:abc"))
        }
        await client.close()
        await server.close()
    }
}
