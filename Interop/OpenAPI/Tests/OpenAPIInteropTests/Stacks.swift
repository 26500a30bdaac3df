import AsyncHTTPClient
import Foundation
import Hummingbird
import HummingbirdHTTP2
import Logging
import InteropAPI
import NGHTTP2Async
import NGHTTP2OpenAPI
import NIOConcurrencyHelpers
import NIOCore
import NIOSSL
import OpenAPIAsyncHTTPClient
import OpenAPIHummingbird
import OpenAPIRuntime
import ServiceLifecycle
import Testing

/// A client transport and a server, one pair per row of the interop matrix.
enum Stack: String, CaseIterable, Sendable, CustomTestStringConvertible {
    /// HTTP2ClientTransport → ServerSessionTransport, h2c (prior knowledge).
    case ourClientOurServerH2C
    /// HTTP2ClientTransport → ServerSessionTransport, TLS with ALPN h2.
    case ourClientOurServerTLS
    /// HTTP2ClientTransport → swift-openapi-hummingbird on Hummingbird 2 (HummingbirdHTTP2, TLS with ALPN h2).
    case ourClientHummingbird
    /// swift-openapi-async-http-client's AsyncHTTPClientTransport (HTTP/2 over TLS) → ServerSessionTransport.
    case asyncHTTPClientOurServer

    var testDescription: String {
        switch self {
        case .ourClientOurServerH2C: "HTTP2ClientTransport → ServerSessionTransport (h2c)"
        case .ourClientOurServerTLS: "HTTP2ClientTransport → ServerSessionTransport (TLS)"
        case .ourClientHummingbird: "HTTP2ClientTransport → swift-openapi-hummingbird (TLS)"
        case .asyncHTTPClientOurServer: "AsyncHTTPClientTransport → ServerSessionTransport (TLS)"
        }
    }

    /// How many bytes the streamed-download test asks for: at least twice what the client may buffer ahead of its
    /// reader, so that "less than half was produced when the first chunk arrived" shows the server streams.
    /// AsyncHTTPClient credits its 8 MiB stream window as frames arrive, not as its reader reads (it may hold all of
    /// an 8 MiB body before the first chunk is read); our client holds at most its window (256 KiB here).
    var downloadSize: Int { self == .asyncHTTPClientOurServer ? 24 << 20 : 8 << 20 }

    /// The stream receive window of our client and server in these tests.
    static let streamWindowSize: UInt32 = 256 << 10

    /// The path prefix of the API on every server (openapi.yaml's server URL has it too).
    static let apiPath = "/api"

    /// Starts this stack's server with a fresh ``InteropService``, runs `body` with a generated client over this
    /// stack's client transport, then shuts both down (also when `body` throws).
    func run(_ body: (Client, StreamProbe, _ serverURL: URL) async throws -> Void) async throws {
        let probe = StreamProbe()
        let service = InteropService(probe: probe)
        let certificates = try await InteropCertificates.shared()
        switch self {
        case .ourClientOurServerH2C, .ourClientOurServerTLS, .asyncHTTPClientOurServer:
            let transport = ServerSessionTransport()
            try service.registerHandlers(on: transport, serverURL: URL(string: Self.apiPath)!)
            var configuration = ServerSession.Configuration()
            // Windows smaller than the default 1 MiB: the streaming tests' bound on what was produced ahead is tighter.
            configuration.streamWindowSize = Stack.streamWindowSize
            if self != .ourClientOurServerH2C {
                configuration.tls = .makeServerConfiguration(
                    certificateChain: .file(certificates.leafCertificate),
                    privateKey: .file(certificates.leafKey)
                )
            }
            let server = try await ServerSession.bind(port: 0, configuration: configuration, handler: transport.handler)
            let scheme = self == .ourClientOurServerH2C ? "http" : "https"
            let serverURL = URL(string: "\(scheme)://127.0.0.1:\(server.port)\(Self.apiPath)")!
            do {
                try await withClient(certificates: certificates, serverURL: serverURL) { try await body($0, probe, serverURL) }
            } catch {
                await server.close(gracePeriod: .seconds(1))
                throw error
            }
            await server.close(gracePeriod: .seconds(1))

        case .ourClientHummingbird:
            let router = Router()
            try service.registerHandlers(on: router, serverURL: URL(string: Self.apiPath)!)
            let tls = TLSConfiguration.makeServerConfiguration(
                certificateChain: try NIOSSLCertificate.fromPEMFile(certificates.leafCertificate).map { .certificate($0) },
                privateKey: .privateKey(try NIOSSLPrivateKey(file: certificates.leafKey, format: .pem))
            )
            let port = PortPromise()
            var logger = Logger(label: "hummingbird")
            logger.logLevel = .warning
            let app = Application(
                router: router,
                server: try .http2Upgrade(tlsConfiguration: tls),
                configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                onServerRunning: { channel in port.fulfil(channel.localAddress?.port ?? 0) },
                logger: logger
            )
            // In a ServiceGroup of its own, so that it stops by graceful shutdown (not by cancellation, which it logs).
            let services = ServiceGroup(services: [app], gracefulShutdownSignals: [], logger: logger)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await services.run() }
                defer { Task { await services.triggerGracefulShutdown() } }
                let serverURL = URL(string: "https://127.0.0.1:\(try await port.value)\(Self.apiPath)")!
                try await withClient(certificates: certificates, serverURL: serverURL) { try await body($0, probe, serverURL) }
            }
        }
    }

    /// Runs `body` with the generated client over this stack's client transport, then shuts that transport's client
    /// down.
    private func withClient(certificates: InteropCertificates, serverURL: URL, _ body: (Client) async throws -> Void) async throws {
        switch self {
        case .ourClientOurServerH2C, .ourClientOurServerTLS, .ourClientHummingbird:
            let client = Self.makeHTTP2Client(certificates: certificates)
            do {
                try await body(Client(serverURL: serverURL, transport: HTTP2ClientTransport(client: client)))
            } catch {
                await client.shutdown()
                throw error
            }
            await client.shutdown()

        case .asyncHTTPClientOurServer:
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .file(certificates.caCertificate)
            var configuration = HTTPClient.Configuration(tlsConfiguration: tls)
            configuration.httpVersion = .automatic
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            do {
                let transport = AsyncHTTPClientTransport(configuration: .init(client: client, timeout: .seconds(60)))
                try await body(Client(serverURL: serverURL, transport: transport))
            } catch {
                try await client.shutdown()
                throw error
            }
            try await client.shutdown()
        }
    }

    /// An HTTP2Client that trusts the test CA, for `https` and `http` (h2c) origins alike.
    static func makeHTTP2Client(certificates: InteropCertificates) -> HTTP2Client {
        var configuration = HTTP2Client.Configuration()
        var tls = NGHTTP2TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(certificates.caCertificate)
        configuration.connection.tls = tls
        configuration.timeout = .seconds(60)
        configuration.connection.streamWindowSize = Stack.streamWindowSize
        return HTTP2Client(configuration: configuration)
    }
}

/// A port that the server's start-up callback fills in and the test waits for.
final class PortPromise: Sendable {
    private let state = NIOLockedValueBox<(port: Int?, waiters: [CheckedContinuation<Int, Never>])>((nil, []))

    func fulfil(_ port: Int) {
        let waiters = state.withLockedValue { state in
            state.port = port
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(returning: port) }
    }

    var value: Int {
        get async throws {
            let port = await withCheckedContinuation { continuation in
                let port: Int? = state.withLockedValue { state in
                    if let port = state.port { return port }
                    state.waiters.append(continuation)
                    return nil
                }
                if let port { continuation.resume(returning: port) }
            }
            guard port != 0 else { throw StartError() }
            return port
        }
    }

    struct StartError: Error {}
}

/// A CA and a leaf for `localhost` + 127.0.0.1 (P-256), made once per test process by the openssl CLI in a temporary
/// directory (the approach of the main package's TestCertificates).
struct InteropCertificates: Sendable {
    let directory: String
    var caCertificate: String { "\(directory)/ca.pem" }
    var leafCertificate: String { "\(directory)/leaf.pem" }
    var leafKey: String { "\(directory)/leaf.key" }

    static func shared() async throws -> InteropCertificates { try await creation.value }
    private static let creation = Task { try InteropCertificates.create() }

    private static func create() throws -> InteropCertificates {
        let directory = NSTemporaryDirectory() + "nghttp2-openapi-\(ProcessInfo.processInfo.processIdentifier)-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let certificates = InteropCertificates(directory: directory)
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        try openssl(["req", "-x509"] + ec + ["-keyout", "\(directory)/ca.key", "-out", certificates.caCertificate, "-days", "30", "-subj", "/CN=openapi-test-ca"])
        try openssl(["req"] + ec + ["-keyout", certificates.leafKey, "-out", "\(directory)/leaf.csr", "-subj", "/CN=localhost"])
        try "subjectAltName=DNS:localhost,IP:127.0.0.1\n".write(toFile: "\(directory)/leaf.ext", atomically: true, encoding: .utf8)
        try openssl([
            "x509", "-req", "-in", "\(directory)/leaf.csr", "-CA", certificates.caCertificate, "-CAkey", "\(directory)/ca.key",
            "-CAcreateserial", "-out", certificates.leafCertificate, "-days", "30", "-extfile", "\(directory)/leaf.ext",
        ])
        return certificates
    }

    private static func openssl(_ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["openssl"] + arguments
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        let output = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw CertificateError(description: "openssl \(arguments.joined(separator: " ")) failed: \(String(decoding: output, as: UTF8.self))")
        }
    }

    struct CertificateError: Error, CustomStringConvertible { var description: String }
}
