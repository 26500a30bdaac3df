public import HTTPTypes
public import NIOCore

extension ServerSession {
    /// A request received by a ``ServerSession``: its head, and its body as a ``StreamReader``.
    public struct Request: Sendable {
        /// The request head: method, scheme, authority, path and header fields.
        public let head: HTTPRequest
        /// The body, read as it arrives.
        public let body: StreamReader
        /// The stream the request came on (over HTTP/1.1: the request's number on its connection, from 1).
        public let streamID: Int32
        /// The client's address.
        public let remoteAddress: SocketAddress?
        /// When the read that brought the request's head returned: no earlier than the head's arrival, and the same
        /// instant for every request that one read brought (a pushed request: when it was promised).
        ///
        /// Anything checked after this instant was checked after the request arrived, which is what a cache needs to
        /// answer requests from one check without missing a change made before they came (`h2 serve` checks a cached
        /// file once per read this way). It is also where an access log's request time starts, as nginx's
        /// `$request_time` does, without reading the clock per request.
        public let receivedAt: ContinuousClock.Instant
        /// The connection the request came on (HTTP/2 or HTTP/1.1).
        let connection: any ServerTransport

        init(
            head: HTTPRequest, body: StreamReader, streamID: Int32, remoteAddress: SocketAddress?,
            receivedAt: ContinuousClock.Instant, connection: any ServerTransport
        ) {
            self.head = head
            self.body = body
            self.streamID = streamID
            self.remoteAddress = remoteAddress
            self.receivedAt = receivedAt
            self.connection = connection
        }

        /// The method.
        public var method: HTTPRequest.Method { head.method }
        /// The `:scheme`.
        public var scheme: String? { head.scheme }
        /// The `:authority`.
        public var authority: String? { head.authority }
        /// The `:path`, with the query.
        public var path: String { head.path ?? "/" }
        /// The header fields (ordered, multi-valued, case-insensitive names).
        public var headers: HTTPFields { head.headerFields }
        /// The trailers, once the body was read to its end.
        public var trailers: HTTPFields? { body.trailers }
        /// The `content-length`, if the request has a valid one.
        public var contentLength: Int? { headers[.contentLength].flatMap { Int($0) } }
        /// The `content-type`, if any.
        public var contentType: String? { headers[.contentType] }

        /// Sends a 1xx informational response (e.g. 103 Early Hints) before the final one
        /// ([RFC 9113 §8.1](https://www.rfc-editor.org/rfc/rfc9113.html#section-8.1)).
        ///
        /// - Throws: ``HTTP2Error/invalidArgument(_:)`` when the status is not 1xx (nothing is sent).
        public func sendInformational(_ response: HTTPResponse) throws {
            guard response.status.kind == .informational else {
                throw HTTP2Error.invalidArgument("an informational response needs a 1xx status, not \(response.status.code)")
            }
            connection.sendInformational(streamID: streamID, response)
        }

        /// Reads the whole body (at most `limit` bytes).
        public func bytes(upTo limit: Int = 64 << 20) async throws -> [UInt8] {
            var buffer = try await body.collect(upTo: limit)
            return buffer.readBytes(length: buffer.readableBytes) ?? []
        }

        /// Reads the whole body as text, decoded with the `charset` of the content type (UTF-8 by default).
        public func text(upTo limit: Int = 64 << 20) async throws -> String {
            decodeText(try await bytes(upTo: limit), contentType: contentType)
        }
    }
}
