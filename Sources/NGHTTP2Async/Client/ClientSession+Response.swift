public import HTTPTypes
import NIOCore
import NGHTTP2
public import Foundation

extension ClientSession {
    /// A response received by a ``ClientSession``: its head, and its body as a ``StreamReader``.
    ///
    /// > Warning: read or drop the body. An unread body holds its stream's window; dropping it cancels the stream.
    public struct Response: Sendable {
        /// The response head: status and header fields.
        public let head: HTTPResponse
        /// The body, read as it arrives.
        public let body: StreamReader
        /// The stream the response came on; over HTTP/1.1 (an ``HTTP2Client`` connection that negotiated it), the
        /// connection's request it answered, counted from 1.
        public let streamID: Int32
        /// The 1xx informational responses that came before this one (e.g. 103 Early Hints), in order.
        public var informational: [HTTPResponse] = []
        /// The `content-encoding` the client undid (`"gzip"`, `"x-gzip"` or `"deflate"`), or `nil` when the body is
        /// as the server sent it.
        ///
        /// A decoded response no longer shows its encoding: `content-encoding` and `content-length` (which described
        /// the encoded body) are removed from ``headers``, and the body reads decoded bytes. This says what the
        /// encoding was, so a client that decodes is never silently lying about what came over the wire (the pitfall
        /// of curl/curl#661, where a decoded body kept its encoded length and encoding).
        public var decodedContentEncoding: String?

        /// The status.
        public var status: HTTPResponse.Status { head.status }
        /// The header fields (ordered, multi-valued, case-insensitive names).
        public var headers: HTTPFields { head.headerFields }
        /// The trailers, once the body was read to its end.
        public var trailers: HTTPFields? { body.trailers }

        /// The `content-length`, if the response has a valid one.
        public var contentLength: Int? { headers[.contentLength].flatMap { Int($0) } }
        /// The `content-type`, if any.
        public var contentType: String? { headers[.contentType] }

        /// Reads the whole body (at most `limit` bytes).
        public func bytes(upTo limit: Int = 64 << 20) async throws -> [UInt8] {
            var buffer = try await body.collect(upTo: limit)
            return buffer.readBytes(length: buffer.readableBytes) ?? []
        }

        /// Reads the whole body (at most `limit` bytes) as `Data`.
        public func data(upTo limit: Int = 64 << 20) async throws -> Data {
            Data(try await bytes(upTo: limit))
        }

        /// Reads the whole body as text, decoded with the `charset` of the content type (UTF-8 by default).
        public func text(upTo limit: Int = 64 << 20) async throws -> String {
            let bytes = try await bytes(upTo: limit)
            return decodeText(bytes, contentType: contentType)
        }

        /// Reads the whole body and decodes it as JSON.
        public func json<T: Decodable>(as type: T.Type = T.self, upTo limit: Int = 64 << 20) async throws -> T {
            try JSONDecoder().decode(type, from: try await data(upTo: limit))
        }
    }
}

extension ClientSession.Response {
    /// The response with its body decoded when `content-encoding` is gzip, x-gzip or deflate (one coding; anything
    /// else, or several codings, is returned unchanged), `content-encoding` and `content-length` removed from its
    /// headers (they described the encoded body), and the coding that was removed in `decodedContentEncoding`.
    ///
    /// Call it before reading the body: the returned response shares this one's ``StreamReader``, which decodes from
    /// then on. A response without a body (204, 304, 1xx, or one whose stream already ended with no byte, as a
    /// HEAD response's does) is returned unchanged; a body that turns out empty decodes to an empty body. Decoding
    /// fails on reads, with ``HTTP2Error/decompressionFailed(_:)`` or, once the decoded body outgrows
    /// `max(1 MiB, maxExpansionRatio × compressed bytes)`, ``HTTP2Error/decompressionLimit(ratio:)``.
    func decodingContent(maxExpansionRatio: Int) -> ClientSession.Response {
        guard decodedContentEncoding == nil, body.contentDecoder == nil else { return self }
        let code = status.code
        guard code >= 200, code != 204, code != 304 else { return self }
        let codings = headers[values: .contentEncoding]
            .flatMap { $0.split(separator: ",") }
            .map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
            .filter { !$0.isEmpty }
        guard codings.count == 1, let name = codings.first else { return self }
        let coding: ContentDecoder.Coding
        switch name {
        case "gzip", "x-gzip": coding = .gzip
        case "deflate": coding = .deflate
        default: return self
        }
        // END_STREAM came with the head (HEAD, or an empty body): nothing to decode, keep the head as sent.
        if body.storage.hasEnded && body.storage.bufferedByteCount == 0 { return self }
        guard body.decode(with: ContentDecoder(coding: coding, maxExpansionRatio: maxExpansionRatio)) else { return self }
        var fields = head.headerFields
        fields[.contentEncoding] = nil
        fields[.contentLength] = nil
        var head = head
        head.headerFields = fields
        var decoded = ClientSession.Response(head: head, body: body, streamID: streamID, informational: informational)
        decoded.decodedContentEncoding = name
        return decoded
    }
}

/// A response head as the connection hands it over, with its body's reader.
struct ReceivedResponse: Sendable {
    let head: HTTPResponse
    let body: StreamReader
    let streamID: Int32
    let informational: [HTTPResponse]

    var status: HTTPResponse.Status { head.status }

    var response: ClientSession.Response {
        ClientSession.Response(head: head, body: body, streamID: streamID, informational: informational)
    }
}

/// Decodes text with the charset named in a content type: UTF-8 unless it says ISO-8859-1, US-ASCII or UTF-16.
func decodeText(_ bytes: [UInt8], contentType: String?) -> String {
    let charset = contentType.flatMap { type in
        type.split(separator: ";").dropFirst()
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .first { $0.lowercased().hasPrefix("charset=") }
            .map { $0.dropFirst("charset=".count).trimmingCharacters(in: CharacterSet(charactersIn: "\"")).lowercased() }
    }
    switch charset {
    case "iso-8859-1", "latin1": return String(bytes.map { Character(Unicode.Scalar($0)) })
    case "us-ascii", "ascii": return String(decoding: bytes.map { $0 & 0x7f }, as: UTF8.self)
    case "utf-16": return String(data: Data(bytes), encoding: .utf16) ?? String(decoding: bytes, as: UTF8.self)
    default: return String(decoding: bytes, as: UTF8.self)
    }
}
