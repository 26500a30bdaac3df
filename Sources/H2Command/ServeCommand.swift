#if CLI
import ArgumentParser
import Foundation
import Logging
import NGHTTP2Async
import HTTPTypes
import NIOCore
import CoreMetrics
import Tracing

/// `h2 serve`: an HTTP/2 test server.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve files and httpbin-style endpoints over HTTP/2 (h2c with prior knowledge or the Upgrade) and HTTP/1.1."
    )

    @Option(help: "The address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "The port to listen on (0 picks a free one, printed on stderr).")
    var port = 8080

    @Option(help: "Serve the files of this directory.")
    var dir: String?

    @Option(help: "Serve TLS (https, ALPN h2 and http/1.1) with this certificate chain (PEM).")
    var tlsCert: String?

    @Option(help: "The private key (PEM) of --tls-cert.")
    var tlsKey: String?

    @Option(help: "Require client certificates signed by the CAs in this PEM file (mutual TLS).")
    var clientCA: String?

    @Option(help: "The most streams a client may open at once (SETTINGS_MAX_CONCURRENT_STREAMS).")
    var maxConcurrentStreams: UInt32 = 100

    @Option(help: "Close a connection without open streams after this many seconds (GOAWAY NO_ERROR; 0: never).")
    var idleTimeout: Double = 60

    @Option(help: "Close a connection whose preface or header block is incomplete after this many seconds (0: never).")
    var headerTimeout: Double = 20

    @Option(help: "Refuse connections beyond this many open at once (GOAWAY, last stream 0; 0: no limit).")
    var maxConnections = 0

    @Option(help: "Send GOAWAY after this many requests on one connection; they finish, the client reconnects (0: no limit).")
    var maxRequestsPerConnection = 0

    @Option(help: "Shut a connection down gracefully once it is this many seconds old (0: no limit).")
    var maxConnectionAge: Double = 0

    @Option(
        name: .customLong("push"),
        help: ArgumentHelp(
            "Push these assets with every response to PATH, to clients that accept pushes (as nghttpd's -p; repeatable).",
            valueName: "PATH=ASSET[,ASSET...]"
        )
    )
    var pushes: [String] = []

    @Flag(help: "Log connection events (debug level) to stderr.")
    var debug = false

    @Flag(help: "Do not print one access-log line per request.")
    var quiet = false

    @Flag(help: "Record the server's metrics into a no-op swift-metrics factory (to measure what metrics cost).")
    var metrics = false

    @Flag(help: "Start a span per request with a no-op swift-distributed-tracing tracer (to measure what tracing costs).")
    var tracing = false

    func validate() throws {
        for (name, value) in [("--idle-timeout", idleTimeout), ("--header-timeout", headerTimeout), ("--max-connection-age", maxConnectionAge)]
        where value < 0 || !value.isFinite {
            throw ValidationError("\(name) takes a number of seconds, 0 or more")
        }
        if maxConnections < 0 || maxRequestsPerConnection < 0 { throw ValidationError("limits are counts, 0 or more") }
        if (tlsCert == nil) != (tlsKey == nil) { throw ValidationError("--tls-cert and --tls-key go together") }
        if clientCA != nil, tlsCert == nil { throw ValidationError("--client-ca needs --tls-cert and --tls-key") }
        _ = try pushTable()
    }

    /// `--push` as a table: a path, the assets pushed with it.
    func pushTable() throws -> [String: [String]] {
        var table: [String: [String]] = [:]
        for entry in pushes {
            let parts = entry.split(separator: "=", maxSplits: 1).map(String.init)
            let assets = parts.count == 2 ? parts[1].split(separator: ",").map(String.init) : []
            guard parts.count == 2, parts[0].hasPrefix("/"), !assets.isEmpty, assets.allSatisfy({ $0.hasPrefix("/") }) else {
                throw ValidationError("--push takes PATH=ASSET[,ASSET...], paths beginning with /, not \(entry)")
            }
            table[parts[0], default: []] += assets
        }
        return table
    }

    func run() async throws {
        var configuration = ServerSession.Configuration()
        if debug { configuration.logger.logLevel = .debug }
        configuration.observability = Observability(
            metricsFactory: metrics ? NOOPMetricsHandler.instance : nil,
            tracer: tracing ? NoOpTracer() : nil
        )
        configuration.maxConcurrentStreams = maxConcurrentStreams
        configuration.idleTimeout = duration(idleTimeout)
        configuration.headerTimeout = duration(headerTimeout)
        configuration.prefaceTimeout = duration(headerTimeout)
        configuration.maxConnectionAge = duration(maxConnectionAge)
        configuration.maxConnections = maxConnections > 0 ? maxConnections : nil
        configuration.maxRequestsPerConnection = maxRequestsPerConnection > 0 ? maxRequestsPerConnection : nil
        if let tlsCert, let tlsKey {
            var tls = NGHTTP2TLSConfiguration.makeServerConfiguration(certificateChain: .file(tlsCert), privateKey: .file(tlsKey))
            if let clientCA {
                tls.trustRoots = .file(clientCA)
                tls.clientCertificateVerification = .required
            }
            configuration.tls = tls
        }
        let testServer = TestServer(directory: dir)
        let accessLog = quiet ? nil : AccessLog()
        let pushTable = try self.pushTable()
        @Sendable func log(_ request: ServerSession.Request, _ response: ServerSession.Response) {
            accessLog?.append(
                address: request.remoteAddress, method: request.method.rawValue, path: request.path,
                status: response.head.status.code,
                length: response.head.headerFields.first { $0.name == .contentLength }?.value,  // no join of values
                elapsed: ContinuousClock.now - request.receivedAt
            )
        }
        // A small file read before and unchanged since, and an endpoint with nothing to wait for, are answered where
        // the request is read, with no task; anything else (a file to read, a body to read, a path with pushes) goes
        // to the handler.
        let immediate: ServerSession.ImmediateHandler = { request in
            if !pushTable.isEmpty, pushTable[String(request.path.prefix { $0 != "?" })] != nil { return nil }
            guard let response = testServer.cachedFile(request) ?? testServer.endpointAtOnce(request) else { return nil }
            log(request, response)
            return response
        }
        let server = try await ServerSession.bind(host: host, port: port, configuration: configuration, immediateHandler: immediate) { request in
            if !pushTable.isEmpty, let assets = pushTable[String(request.path.prefix { $0 != "?" })] {
                for asset in assets { try await request.push(path: asset) }
            }
            let response = try await testServer.handle(request)
            log(request, response)
            return response
        }
        printError("h2: serving on \(tlsCert == nil ? "http" : "https")://\(host):\(server.port)\(dir.map { " (files from \($0))" } ?? "")")
        let signals = SignalWatcher { signal in
            printError("h2: \(signal), shutting down gracefully")
            Task { await server.close(gracePeriod: .seconds(5)) }
        }
        try await server.run()
        accessLog?.flush()
        withExtendedLifetime(signals) {}
        printError("h2: stopped")
    }
}

/// Seconds from the command line as a timeout; 0 turns it off.
private func duration(_ seconds: Double) -> Duration? {
    seconds > 0 ? .milliseconds(Int64((seconds * 1000).rounded())) : nil
}

/// Calls back on SIGINT and SIGTERM instead of dying.
final class SignalWatcher {
    private let sources: [any DispatchSourceSignal]

    init(_ handler: @escaping @Sendable (String) -> Void) {
        sources = [(SIGINT, "SIGINT"), (SIGTERM, "SIGTERM")].map { number, name in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { handler(name) }
            source.resume()
            return source
        }
    }
}
#endif
