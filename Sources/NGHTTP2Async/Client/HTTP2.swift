import NIOCore
public import HTTPTypes
import NIOPosix

/// One-shot requests: each opens a connection, sends one request, and closes the connection once the response
/// has been read.
///
/// ```swift
/// let response = try await HTTP2.get("http://127.0.0.1:8080/get")
/// print(response.status, try await response.text())
/// ```
public enum HTTP2 {
    /// Sends one request on a new connection. The connection closes when the response's body ends (read it, or
    /// drop the response).
    public static func request(
        _ method: HTTPRequest.Method,
        _ url: String,
        headers: HTTPFields = [:],
        body: MessageBody = .empty,
        configuration: ClientSession.Configuration = ClientSession.Configuration()
    ) async throws -> ClientSession.Response {
        let target = try Target(url)
        let client = try await ClientSession.connect(to: url, configuration: configuration)
        do {
            let response = try await client.request(method, target.pathAndQuery, headers: headers, body: body)
            client.connection.execute { $0.beginGracefulShutdown() }
            return response
        } catch {
            await client.terminate()
            throw error
        }
    }

    /// GET `url` on a new connection.
    public static func get(_ url: String, headers: HTTPFields = [:]) async throws -> ClientSession.Response {
        try await request(.get, url, headers: headers)
    }

    /// POST `body` to `url` on a new connection.
    public static func post(_ url: String, headers: HTTPFields = [:], body: MessageBody) async throws -> ClientSession.Response {
        try await request(.post, url, headers: headers, body: body)
    }
}
