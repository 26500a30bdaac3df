import Foundation
import HTTPTypes
import Testing
@testable import NGHTTP2Async

/// How the raw client reaches the server under test.
enum Transport: String, CaseIterable, Sendable, CustomTestStringConvertible {
    /// HTTP/2 over cleartext TCP with prior knowledge (RFC 9113 §3.3).
    case h2c
    /// HTTP/2 over TLS, ALPN "h2" (RFC 9113 §3.2).
    case tls

    var testDescription: String { rawValue }
}

/// A `ServerSession` on 127.0.0.1 like h2spec's usual target: every request gets status 200 and a short text body at
/// once, without its body being read.
struct ConformanceServer: Sendable {
    static let body = "hello from the conformance server\n"

    let session: ServerSession
    let transport: Transport
    let clientTLS: TLSContext?

    var port: Int { session.port }
    var scheme: String { transport == .tls ? "https" : "http" }
    var authority: String { "localhost:\(port)" }

    static func start(
        _ transport: Transport, configure: (inout ServerSession.Configuration) -> Void = { _ in }
    ) async throws -> ConformanceServer {
        var configuration = ServerSession.Configuration()
        var clientTLS: TLSContext?
        if transport == .tls {
            let certificates = try await TestCertificates.shared()
            configuration.tls = .makeServerConfiguration(
                certificateChain: .file(certificates.leafCertificate), privateKey: .file(certificates.leafKey))
            var tls = NGHTTP2TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .file(certificates.caCertificate)
            clientTLS = try TLSContext(configuration: tls)
        }
        configure(&configuration)
        let session = try await ServerSession.bind(host: "127.0.0.1", port: 0, configuration: configuration) { _ in
            ServerSession.Response(status: .ok, headers: [.contentType: "text/plain"], body: .text(body))
        }
        return ConformanceServer(session: session, transport: transport, clientTLS: clientTLS)
    }

    /// A raw connection (TLS handshake done when over TLS), nothing sent yet.
    func connect() async throws -> RawConnection {
        try await RawConnection.connect(port: port, tls: clientTLS)
    }

    /// A raw connection after the h2spec handshake: the preface and our SETTINGS (`settings`), the server's SETTINGS
    /// (returned), our ACK of them, and the server's ACK of ours.
    func handshake(_ settings: [(UInt16, UInt32)] = [], sourceLocation: SourceLocation = #_sourceLocation) async throws -> (RawConnection, RawFrame) {
        let connection = try await connect()
        try await connection.send(connectionPreface + RawFrame.settings(settings).bytes)
        var serverSettings: RawFrame?
        var acknowledged = false
        let deadline = ContinuousClock.now + .seconds(5)
        while serverSettings == nil || !acknowledged {
            switch await connection.nextFrame(timeout: deadline - ContinuousClock.now) {
            case .frame(let frame) where frame.isSettings:
                serverSettings = frame
                try await connection.send(.settingsAck)
            case .frame(let frame) where frame.isSettingsAck:
                acknowledged = true
            case .frame:
                continue
            case .closed, .timedOut:
                throw RawConnectionError(description: "handshake: no SETTINGS and SETTINGS ACK from the server")
            }
        }
        return (connection, serverSettings!)
    }

    /// Request pseudo-header fields and `extra` fields.
    func requestFields(method: String = "GET", path: String = "/", _ extra: [(String, String)] = []) -> [(String, String)] {
        [(":method", method), (":scheme", scheme), (":path", path), (":authority", authority)] + extra
    }

    /// A request header block (every field a literal without indexing).
    func request(method: String = "GET", path: String = "/", _ extra: [(String, String)] = []) -> [UInt8] {
        HPACK.block(requestFields(method: method, path: path, extra))
    }

    /// A client of our own library for the same server.
    func client() async throws -> ClientSession {
        var configuration = ClientSession.Configuration()
        if transport == .tls {
            let certificates = try await TestCertificates.shared()
            var tls = NGHTTP2TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .file(certificates.caCertificate)
            configuration.tls = tls
        }
        return try await ClientSession.connect(to: "\(scheme)://localhost:\(port)", configuration: configuration)
    }

    func close() async {
        await session.close(gracePeriod: .milliseconds(100))
    }
}

/// Runs `body` against a fresh server over `transport`, on a raw connection after the handshake, and cleans up.
func withConformanceServer(
    _ transport: Transport, settings: [(UInt16, UInt32)] = [], configure: (inout ServerSession.Configuration) -> Void = { _ in },
    _ body: (ConformanceServer, RawConnection, RawFrame) async throws -> Void
) async throws {
    let server = try await ConformanceServer.start(transport, configure: configure)
    do {
        let (connection, serverSettings) = try await server.handshake(settings)
        do {
            try await body(server, connection, serverSettings)
        } catch {
            await connection.close()
            throw error
        }
        await connection.close()
    } catch {
        await server.close()
        throw error
    }
    await server.close()
}

/// A header block of exactly `size` bytes: `block` plus one literal field whose value fills the rest.
func headerBlock(_ block: [UInt8], paddedTo size: Int) -> [UInt8] {
    let fixed = block.count + 1 + HPACK.string("x-fill").count
    var valueLength = size - fixed - 1
    while valueLength > 0, fixed + HPACK.integer(valueLength, prefixBits: 7, pattern: 0).count + valueLength > size { valueLength -= 1 }
    let result = block + HPACK.literal("x-fill", String(repeating: "f", count: max(0, valueLength)))
    precondition(result.count == size, "header block of \(result.count) bytes, not \(size)")
    return result
}
