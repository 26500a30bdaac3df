public import NIOCore
public import HTTPTypes
public import NIOPosix
public import Foundation
import NGHTTP2
import Logging

/// An HTTP/2 client for a whole application: it keeps a pool of connections per origin, retries what servers did not
/// process, follows redirects when asked, decodes compressed bodies, and times requests out.
///
/// ```swift
/// let client = HTTP2Client()
/// let response = try await client.get("https://example.com/api/items")
/// let items = try await response.json(as: [Item].self)
/// try await client.post("https://example.com/api/items", body: .text(json), timeout: .seconds(5))
/// await client.shutdown()
/// ```
///
/// **Pooling.** Connections open lazily, one origin (scheme, host, port) at a time. A connection carries as many
/// requests at once as the server's SETTINGS_MAX_CONCURRENT_STREAMS allows; only when every connection to the origin
/// is full and requests wait does the client open another, up to ``Configuration/maxConnectionsPerOrigin``, and a new
/// request goes to the least loaded connection. A connection that received GOAWAY takes no new requests and is
/// replaced; one without an open stream for a minute closes; after a failed connect the next waits (backoff).
///
/// **Retries.** A request the server did not process (above the last stream ID of its GOAWAY, or refused with
/// REFUSED_STREAM, [RFC 9113 §8.7](https://www.rfc-editor.org/rfc/rfc9113.html#section-8.7)) is sent again on
/// another connection, whatever its method (``Configuration/retry``). The error after the last attempt says how many
/// were made (``HTTP2Error/attempts``).
///
/// One client is meant to be shared: it is `Sendable`, and every call may come from any task. Call ``shutdown()``
/// before the application exits; it waits for the requests in flight.
public final class HTTP2Client: Sendable {
    /// A response: its head, and its body as a ``StreamReader`` (read it, or drop it to cancel the stream).
    public typealias Response = ClientSession.Response

    /// What this client was made with.
    public let configuration: Configuration
    let eventLoopGroup: any EventLoopGroup
    private let state = LockedState(State())
    /// Metrics and spans; `nil` when ``Configuration/observability`` is off (the default).
    let observer: ClientObserver?

    private struct State {
        var pools: [OriginPool.Origin: OriginPool] = [:]
        var isShutDown = false
        /// Attempts after the first, over the client's life (for tests and diagnostics).
        var retries = 0
    }

    /// A client with `configuration`, whose connections run on `eventLoopGroup`.
    public init(
        configuration: Configuration = Configuration(),
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) {
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup
        self.observer = ClientObserver(configuration.observability)
    }

    /// The client behind ``HTTP2/get(_:headers:timeout:)`` and the other one-shot calls: default configuration, connections
    /// reused across calls and closed when idle. Never shut down.
    public static let shared = HTTP2Client()

    /// How many attempts were retries, over this client's life.
    var retryCount: Int { state.withLock { $0.retries } }

    // MARK: Requests

    /// Sends `request` (its `scheme` and `authority` name the origin) and waits for the response head.
    ///
    /// - Parameters:
    ///   - request: the head; `scheme` (`http` or `https`) and `authority` are required.
    ///   - body: the body (``MessageBody/empty`` by default).
    ///   - timeout: how long the whole exchange may take, up to the end of the response body; `nil` uses
    ///     ``Configuration/timeout``.
    /// - Returns: the response (after redirects, when ``Configuration/redirects`` follows them), its body decoding as
    ///   it is read when it was compressed and ``Configuration/decompression`` is on.
    /// - Throws: ``HTTP2Error`` (``HTTP2Error/Code/requestTimeout``, ``HTTP2Error/Code/readTimeout``,
    ///   ``HTTP2Error/Code/notProcessed`` after the last attempt, ``HTTP2Error/Code/tooManyRedirects``, …), a
    ///   ``TLSError`` or the socket's error when no connection could be opened, or `CancellationError`.
    public func execute(_ request: HTTPRequest, body: MessageBody = .empty, timeout: Duration? = nil) async throws -> Response {
        if let observer { return try await observer.execute(request, body: body, timeout: timeout, on: self) }
        return try await send(request, body: body, timeout: timeout, observation: nil)
    }

    /// ``execute(_:body:timeout:)`` itself; `observation` hears of its retries and redirects.
    func send(_ request: HTTPRequest, body: MessageBody, timeout: Duration?, observation: RequestObservation?) async throws -> Response {
        let timeout = timeout ?? configuration.timeout
        let deadline = timeout.map { (at: NIODeadline.now() + TimeAmount($0), given: $0) }
        var request = request
        var body = body
        if configuration.decompression.isEnabled, request.headerFields[.acceptEncoding] == nil {
            request.headerFields[.acceptEncoding] = ContentDecoding.acceptEncoding
        }
        // Built only when redirects may be followed: most calls never need them.
        var visited: Set<String> = configuration.redirects.maxRedirects > 0 ? [request.urlString] : []
        var redirects = 0
        while true {
            let response = try await executeWithRetries(request, body: body, deadline: deadline, observation: observation)
            guard
                let (next, nextBody) = try configuration.redirects.redirect(
                    status: response.status,
                    location: response.headers[.location],
                    after: request,
                    body: body,
                    redirectsSoFar: redirects
                )
            else {
                return decoded(response)
            }
            await finish(response)
            guard visited.insert(next.urlString).inserted else { throw HTTP2Error.redirectLoop(next.urlString) }
            redirects += 1
            observation?.redirected(to: next.urlString)
            (request, body) = (next, nextBody)
        }
    }

    /// Sends a request to `url` and waits for the response head.
    public func request(
        _ method: HTTPRequest.Method,
        _ url: String,
        headers: HTTPFields = [:],
        body: MessageBody = .empty,
        timeout: Duration? = nil
    ) async throws -> Response {
        let target = try Target(url)
        let request = HTTPRequest(method: method, scheme: target.scheme, authority: target.authority, path: target.pathAndQuery, headerFields: headers)
        return try await execute(request, body: body, timeout: timeout)
    }

    /// GET `url`.
    public func get(_ url: String, headers: HTTPFields = [:], timeout: Duration? = nil) async throws -> Response {
        try await request(.get, url, headers: headers, timeout: timeout)
    }

    /// HEAD `url`.
    public func head(_ url: String, headers: HTTPFields = [:], timeout: Duration? = nil) async throws -> Response {
        try await request(.head, url, headers: headers, timeout: timeout)
    }

    /// POST `body` to `url`.
    public func post(_ url: String, headers: HTTPFields = [:], body: MessageBody = .empty, timeout: Duration? = nil) async throws -> Response {
        try await request(.post, url, headers: headers, body: body, timeout: timeout)
    }

    /// PUT `body` to `url`.
    public func put(_ url: String, headers: HTTPFields = [:], body: MessageBody = .empty, timeout: Duration? = nil) async throws -> Response {
        try await request(.put, url, headers: headers, body: body, timeout: timeout)
    }

    /// PATCH `url` with `body`.
    public func patch(_ url: String, headers: HTTPFields = [:], body: MessageBody = .empty, timeout: Duration? = nil) async throws -> Response {
        try await request(.patch, url, headers: headers, body: body, timeout: timeout)
    }

    /// DELETE `url`.
    public func delete(_ url: String, headers: HTTPFields = [:], timeout: Duration? = nil) async throws -> Response {
        try await request(.delete, url, headers: headers, timeout: timeout)
    }

    /// Sends a request to `url` and waits for the response head.
    public func request(
        _ method: HTTPRequest.Method,
        _ url: URL,
        headers: HTTPFields = [:],
        body: MessageBody = .empty,
        timeout: Duration? = nil
    ) async throws -> Response {
        try await request(method, url.absoluteString, headers: headers, body: body, timeout: timeout)
    }

    /// GET `url`.
    public func get(_ url: URL, headers: HTTPFields = [:], timeout: Duration? = nil) async throws -> Response {
        try await request(.get, url, headers: headers, timeout: timeout)
    }

    /// HEAD `url`.
    public func head(_ url: URL, headers: HTTPFields = [:], timeout: Duration? = nil) async throws -> Response {
        try await request(.head, url, headers: headers, timeout: timeout)
    }

    /// POST `body` to `url`.
    public func post(_ url: URL, headers: HTTPFields = [:], body: MessageBody = .empty, timeout: Duration? = nil) async throws -> Response {
        try await request(.post, url, headers: headers, body: body, timeout: timeout)
    }

    /// PUT `body` to `url`.
    public func put(_ url: URL, headers: HTTPFields = [:], body: MessageBody = .empty, timeout: Duration? = nil) async throws -> Response {
        try await request(.put, url, headers: headers, body: body, timeout: timeout)
    }

    /// PATCH `url` with `body`.
    public func patch(_ url: URL, headers: HTTPFields = [:], body: MessageBody = .empty, timeout: Duration? = nil) async throws -> Response {
        try await request(.patch, url, headers: headers, body: body, timeout: timeout)
    }

    /// DELETE `url`.
    public func delete(_ url: URL, headers: HTTPFields = [:], timeout: Duration? = nil) async throws -> Response {
        try await request(.delete, url, headers: headers, timeout: timeout)
    }

    // MARK: Shutdown

    /// Takes no new requests (they throw ``HTTP2Error/clientShutDown``), lets every request in flight finish —
    /// including those still waiting for a connection and retries of those the server did not process — then closes
    /// every connection gracefully (GOAWAY) and returns once they are closed.
    public func shutdown() async {
        let pools = state.withLock { state in
            state.isShutDown = true
            return Array(state.pools.values)
        }
        await withTaskGroup(of: Void.self) { group in
            for pool in pools { group.addTask { await pool.shutDown() } }
        }
    }

    // MARK: Attempts

    private func executeWithRetries(
        _ request: HTTPRequest,
        body: MessageBody,
        deadline: (at: NIODeadline, given: Duration)?,
        observation: RequestObservation?
    ) async throws -> Response {
        let origin = try OriginPool.Origin(request)
        var attempts = 0
        while true {
            attempts += 1
            let pool = try pool(for: origin, isRetry: attempts > 1)
            let cancellation = RequestCancellation()
            do {
                let lease = try await pool.lease(isRetry: attempts > 1, deadline: deadline)
                do {
                    let timeouts = deadline == nil && configuration.readTimeout == nil ? nil : StreamTimeouts(deadline: deadline, read: configuration.readTimeout)
                    return try await lease.connection.sendRequest(
                        request, fields: request.http2Fields, body: body, cancellation: cancellation, timeouts: timeouts
                    ).response
                } catch {
                    if !cancellation.hasStarted { pool.requestNotStarted(lease) }
                    throw error
                }
            } catch {
                guard attempts < configuration.retry.maxAttempts, isWorthRetrying(error, request, body, started: cancellation.hasStarted) else {
                    if attempts > 1, let error = error as? HTTP2Error { throw error.afterAttempts(attempts) }
                    throw error
                }
                state.withLock { $0.retries += 1 }
                observation?.retrying(after: error)
                configuration.connection.logger.debug("\(origin): attempt \(attempts) of \(request.method) \(request.path ?? "/") failed (\(error)); retrying")
            }
        }
    }

    /// Whether a failed attempt is sent again (``RetryPolicy``).
    private func isWorthRetrying(_ error: any Error, _ request: HTTPRequest, _ body: MessageBody, started: Bool) -> Bool {
        guard let error = error as? HTTP2Error else { return false }
        // A streaming body's writer ran once the stream opened: it cannot be replayed.
        let bodyReplays = started ? !body.isStreaming : true
        if error.isRetrySafe { return bodyReplays }
        guard configuration.retry.retriesIdempotentRequestsAfterConnectionLoss, bodyReplays, request.method.isIdempotent else { return false }
        return error.code == .connectionClosed || error.code == .keepAliveTimeout
    }

    /// The pool of `origin`, if a request made one.
    func pool(ifExists origin: OriginPool.Origin) -> OriginPool? {
        state.withLock { $0.pools[origin] }
    }

    private func pool(for origin: OriginPool.Origin, isRetry: Bool) throws -> OriginPool {
        try state.withLock { state in
            if let pool = state.pools[origin] { return pool }
            guard !state.isShutDown else { throw HTTP2Error.clientShutDown }
            let pool = OriginPool(
                origin: origin,
                configuration: connectionConfiguration(for: origin),
                httpVersion: configuration.httpVersion,
                limits: .init(maxConnections: max(1, configuration.maxConnectionsPerOrigin)),
                eventLoopGroup: eventLoopGroup
            )
            state.pools[origin] = pool
            return pool
        }
    }

    /// Each connection's configuration for `origin`: TLS for `https` only.
    private func connectionConfiguration(for origin: OriginPool.Origin) -> ClientSession.Configuration {
        var connection = configuration.connection
        if origin.scheme == "https" {
            if connection.tls == nil { connection.tls = .makeClientConfiguration() }
            connection.tls?.applicationProtocols = configuration.httpVersion.applicationProtocols
        } else {
            connection.tls = nil
        }
        if connection.proxy == nil {
            connection.proxy = configuration.proxy
                ?? (configuration.proxyFromEnvironment ? HTTPProxy.fromEnvironment(for: origin.scheme, host: origin.hostAndPort) : nil)
        }
        connection.logger[metadataKey: "origin"] = "\(origin)"
        connection.metrics = observer?.connectionMetrics
        return connection
    }

    /// A redirect's body is not wanted: up to 64 KiB of it is read so that the stream ends cleanly (no RST_STREAM
    /// for the server to count); a longer one is cancelled.
    private func finish(_ response: Response) async {
        _ = try? await response.body.collect(upTo: 64 << 10)
    }

    /// The response with its body decoding as it is read, when it is compressed and decompression is on.
    private func decoded(_ response: Response) -> Response {
        guard configuration.decompression.isEnabled else { return response }
        return response.decodingContent(maxExpansionRatio: configuration.decompression.maxExpansionRatio)
    }
}

extension OriginPool.Origin {
    /// The origin a request names by its `:scheme` and `:authority`.
    init(_ request: HTTPRequest) throws {
        let scheme = request.scheme.map { $0 == "https" || $0 == "http" ? $0 : $0.lowercased() }
        guard let scheme, scheme == "http" || scheme == "https", let authority = request.authority, !authority.isEmpty else {
            throw HTTP2Error.invalidURL("\(request.scheme ?? "")://\(request.authority ?? "") (HTTP2Client needs an http or https scheme and an authority)")
        }
        // host, host:port, [v6], [v6]:port (RFC 3986 §3.2.2); parsed by hand: this runs for every request.
        var host = Substring(authority)
        var port = scheme == "https" ? 443 : 80
        if host.first == "[" {
            guard let close = host.firstIndex(of: "]") else { throw HTTP2Error.invalidURL(authority) }
            let rest = host[host.index(after: close)...]
            host = host[host.index(after: host.startIndex)..<close]
            if !rest.isEmpty {
                guard rest.first == ":", let value = Int(rest.dropFirst()) else { throw HTTP2Error.invalidURL(authority) }
                port = value
            }
        } else if let colon = host.lastIndex(of: ":") {
            guard let value = Int(host[host.index(after: colon)...]) else { throw HTTP2Error.invalidURL(authority) }
            port = value
            host = host[..<colon]
        }
        guard !host.isEmpty, (0...65535).contains(port) else { throw HTTP2Error.invalidURL(authority) }
        self.init(scheme: scheme, host: String(host).lowercased(), port: port)
    }
}

extension MessageBody {
    /// Whether the body is written by a closure (and so cannot be sent a second time).
    var isStreaming: Bool {
        if case .writer = storage { return true }
        return false
    }
}

extension HTTPRequest.Method {
    /// GET, HEAD, OPTIONS, TRACE, PUT and DELETE ([RFC 9110 §9.2.2](https://www.rfc-editor.org/rfc/rfc9110.html#section-9.2.2)).
    var isIdempotent: Bool {
        switch self {
        case .get, .head, .options, .trace, .put, .delete: true
        default: false
        }
    }
}
