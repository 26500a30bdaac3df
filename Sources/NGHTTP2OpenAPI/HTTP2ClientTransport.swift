public import Foundation
public import HTTPTypes
public import NGHTTP2Async
public import OpenAPIRuntime
import NIOCore

/// A swift-openapi-runtime `ClientTransport` that sends each operation over an `HTTP2Client`:
/// pooled HTTP/2 connections, TLS with ALPN, redirects, retries and decompression as that client is configured.
///
/// ```swift
/// let client = Client(serverURL: try Servers.Server1.url(), transport: HTTP2ClientTransport(client: HTTP2Client()))
/// ```
///
/// Bodies stay streamed in both directions: a request `HTTPBody` is written chunk by chunk as the stream's flow-control
/// window allows (never collected first), and the response `HTTPBody` reads the response's `StreamReader` as it is
/// iterated, so the receive window is credited only as the generated code (or the caller) takes bytes out. The
/// response body can be iterated once (`.single`).
public struct HTTP2ClientTransport: ClientTransport {
    /// The client the requests go through. It is not shut down by the transport: its owner does that.
    public var client: HTTP2Client

    /// How long one operation may take, up to the end of its response body; `nil` uses the client's
    /// `HTTP2Client/Configuration/timeout`.
    public var timeout: Duration?

    /// A transport over `client` (default `HTTP2Client/shared`).
    ///
    /// - Parameters:
    ///   - client: the pooled HTTP/2 client to send through.
    ///   - timeout: the whole-exchange timeout per operation; `nil` leaves it to the client's configuration.
    public init(client: HTTP2Client = .shared, timeout: Duration? = nil) {
        self.client = client
        self.timeout = timeout
    }

    /// Sends `request` to `baseURL` + the request's path (and query) and returns the response head with a streamed
    /// body (`nil` for HEAD, whose response has none).
    ///
    /// - Throws: ``HTTP2ClientTransportError`` when `baseURL` cannot name an HTTP/2 origin, else what
    ///   `HTTP2Client/execute(_:body:timeout:)` throws (the runtime wraps it in a `ClientError`).
    public func send(
        _ request: HTTPRequest,
        body: HTTPBody?,
        baseURL: URL,
        operationID: String
    ) async throws -> (HTTPResponse, HTTPBody?) {
        let head = try Self.makeRequest(request, body: body, baseURL: baseURL)
        let response = try await client.execute(head, body: Self.makeBody(body), timeout: timeout)
        return (response.head, Self.makeBody(response, method: request.method))
    }

    /// The request head with `:scheme` and `:authority` from `baseURL` and `:path` = `baseURL`'s path + the request's
    /// path and query; a known body length becomes `content-length` unless the request has one.
    static func makeRequest(_ request: HTTPRequest, body: HTTPBody?, baseURL: URL) throws -> HTTPRequest {
        guard
            let components = URLComponents(url: baseURL, resolvingAgainstBaseURL: true),
            let scheme = components.scheme?.lowercased(), scheme == "http" || scheme == "https",
            let host = components.percentEncodedHost, !host.isEmpty
        else { throw HTTP2ClientTransportError(baseURL: baseURL, path: request.path) }
        // URLComponents gives an IPv6 literal without its brackets on some platforms and with them on others.
        let bracketed = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        let authority = components.port.map { "\(bracketed):\($0)" } ?? bracketed
        var basePath = Substring(components.percentEncodedPath)
        while basePath.hasSuffix("/") { basePath = basePath.dropLast() }
        var path = request.path ?? "/"
        if !path.hasPrefix("/") { path = "/" + path }
        var head = request
        head.scheme = scheme
        head.authority = authority
        head.path = String(basePath) + path
        if let body, case .known(let length) = body.length, head.headerFields[.contentLength] == nil {
            head.headerFields[.contentLength] = String(length)
        }
        return head
    }

    /// The request body, streamed: each chunk the `HTTPBody` yields is written when flow control takes it.
    static func makeBody(_ body: HTTPBody?) -> MessageBody {
        guard let body else { return .empty }
        if case .known(0) = body.length { return .empty }
        return .writer { writer in
            for try await chunk in body { try await writer.write(chunk) }
        }
    }

    /// The response body over the response's `StreamReader`: `.known` length from `content-length` (absent when the
    /// client decoded a compressed body), iterated once.
    static func makeBody(_ response: HTTP2Client.Response, method: HTTPRequest.Method) -> HTTPBody? {
        if method == .head {
            response.body.cancel()
            return nil
        }
        let length: HTTPBody.Length = response.contentLength.map { .known(Int64($0)) } ?? .unknown
        return HTTPBody(StreamReaderChunks(reader: response.body), length: length, iterationBehavior: .single)
    }
}

/// The base URL given to ``HTTP2ClientTransport`` does not name an `http` or `https` origin (scheme and host).
public struct HTTP2ClientTransportError: Error, CustomStringConvertible, Sendable {
    /// The server URL the request was to go to.
    public var baseURL: URL
    /// The operation's path and query.
    public var path: String?

    /// A description for logs: the URL and the path.
    public var description: String {
        "HTTP2ClientTransport: invalid request URL from path \(path ?? "<nil>") relative to base URL \(baseURL.absoluteString) (an http or https URL with a host is needed)"
    }
}

/// A `StreamReader`'s chunks as the `ArraySlice<UInt8>` chunks `HTTPBody` carries, read one at a time as iterated.
struct StreamReaderChunks: AsyncSequence, Sendable {
    typealias Element = HTTPBody.ByteChunk
    let reader: StreamReader

    func makeAsyncIterator() -> Iterator { Iterator(reader: reader) }

    struct Iterator: AsyncIteratorProtocol {
        let reader: StreamReader

        mutating func next() async throws -> HTTPBody.ByteChunk? {
            guard let buffer = try await reader.read() else { return nil }
            return HTTPBody.ByteChunk(buffer.readableBytesView)
        }
    }
}
