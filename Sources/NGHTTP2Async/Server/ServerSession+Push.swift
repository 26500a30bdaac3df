public import HTTPTypes
import NGHTTP2
import Logging

extension ServerSession.Request {
    /// Promises the client a response to `request` and answers it with this server's own handler, as if the client
    /// had asked for it (server push, [RFC 9113 §8.4](https://www.rfc-editor.org/rfc/rfc9113.html#section-8.4)).
    ///
    /// The PUSH_PROMISE goes out on this request's stream, before its response: push before you return the response
    /// (or, with a streaming body, before the writer ends it). The pushed request carries no body (§8.4: promised
    /// requests are safe and cacheable); its `:scheme` and `:authority` are this request's when `request` leaves them
    /// out. The handler then sees the pushed request like any other, and its response goes out on the promised
    /// stream.
    ///
    /// - Returns: `false` when the client does not accept pushes (SETTINGS_ENABLE_PUSH = 0, §6.5.2, the default of
    ///   most clients), the connection is closing, this request's stream is already closed, or the request came
    ///   over HTTP/1.1 (which has no push): nothing was sent.
    /// - Throws: ``HTTP2Error/invalidArgument(_:)`` for a method other than GET or HEAD.
    @discardableResult
    public func push(_ request: HTTPRequest) async throws -> Bool {
        guard request.method == .get || request.method == .head else {
            throw HTTP2Error.invalidArgument("a pushed request must be GET or HEAD (RFC 9113 §8.4), not \(request.method)")
        }
        var promised = request
        if promised.scheme == nil { promised.scheme = scheme }
        if promised.authority == nil { promised.authority = authority }
        let head = promised
        let streamID = self.streamID
        guard let connection = self.connection as? ConnectionReference else { return false }  // HTTP/1.1: no push
        return await withCheckedContinuation { continuation in
            connection.execute { continuation.resume(returning: $0.pushPromise(on: streamID, head)) }
        }
    }

    /// Pushes a GET of `path` (with `headers`) on this request's scheme and authority: ``push(_:)``.
    @discardableResult
    public func push(path: String, headers: HTTPFields = [:]) async throws -> Bool {
        try await push(HTTPRequest(method: .get, scheme: scheme, authority: authority, path: path, headerFields: headers))
    }
}

extension ConnectionHandler {
    /// Sends a PUSH_PROMISE for `head` on `streamID` and runs the server's handler for it on the promised stream.
    /// Returns whether the promise went out.
    func pushPromise(on streamID: Int32, _ head: HTTPRequest) -> Bool {
        guard case .server(let handler) = role, let reference, streams[streamID] != nil, !machine.isClosingOrClosed,
            session.remoteSetting(.enablePush) != 0
        else { return false }
        let promisedID: Int32
        do {
            promisedID = try session.submitPushPromise(streamID: streamID, head.http2Fields)
        } catch {
            logger.debug("stream \(streamID): no push of \(head.path ?? "/"): \(error)")
            return false
        }
        scheduleFlush()
        serveRequest(streamID: promisedID, head: head, body: nil, handler: handler, reference: reference, byPeer: false)
        return true
    }
}
