public import HTTPTypes

/// One-shot requests, on ``HTTP2Client/shared``: connections are reused from one call to the next (to the same
/// origin) and close after a minute without a request.
///
/// ```swift
/// let response = try await HTTP2.get("http://127.0.0.1:8080/get")
/// print(response.status, try await response.text())
/// ```
public enum HTTP2 {
    /// Sends one request and waits for the response head.
    ///
    /// - Parameters:
    ///   - method: the request's method.
    ///   - url: `http://` or `https://` with host, optional port, path and query.
    ///   - headers: more header fields.
    ///   - body: the body (none by default).
    ///   - timeout: how long the whole exchange may take (``HTTP2Client/execute(_:body:timeout:)``).
    ///   - configuration: `nil` (the default) runs the request on ``HTTP2Client/shared``. Otherwise it runs on a
    ///     client of its own made with this configuration, which shuts down once the response's body is done (read
    ///     it, or drop the response): nothing is reused across such calls.
    public static func request(
        _ method: HTTPRequest.Method,
        _ url: String,
        headers: HTTPFields = [:],
        body: MessageBody = .empty,
        timeout: Duration? = nil,
        configuration: HTTP2Client.Configuration? = nil
    ) async throws -> HTTP2Client.Response {
        guard let configuration else {
            return try await HTTP2Client.shared.request(method, url, headers: headers, body: body, timeout: timeout)
        }
        let client = HTTP2Client(configuration: configuration)
        do {
            let response = try await client.request(method, url, headers: headers, body: body, timeout: timeout)
            // A graceful shutdown: the response's stream goes on until its body is read or dropped.
            Task { await client.shutdown() }
            return response
        } catch {
            await client.shutdown()
            throw error
        }
    }

    /// GET `url`.
    public static func get(_ url: String, headers: HTTPFields = [:], timeout: Duration? = nil) async throws -> HTTP2Client.Response {
        try await request(.get, url, headers: headers, timeout: timeout)
    }

    /// POST `body` to `url`.
    public static func post(_ url: String, headers: HTTPFields = [:], body: MessageBody, timeout: Duration? = nil) async throws -> HTTP2Client.Response {
        try await request(.post, url, headers: headers, body: body, timeout: timeout)
    }
}
