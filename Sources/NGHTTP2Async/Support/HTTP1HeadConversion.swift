import NIOHTTP1
import NIOCore
import HTTPTypes
import NGHTTP2

/// Whether an HTTP/1.1 field only concerns the connection it came on, and is not part of the request the handler
/// sees ([RFC 9110 §7.6.1](https://www.rfc-editor.org/rfc/rfc9110.html#section-7.6.1)): the handler gets the same
/// fields over HTTP/1.1 as over HTTP/2.
private func isHopByHop(_ name: String) -> Bool {
    switch name.lowercased() {
    case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "http2-settings", "host": true
    default: false
    }
}

extension HTTPRequestHead {
    /// The comma-separated tokens of every `Connection` field, lower-cased
    /// ([RFC 9110 §7.6.1](https://www.rfc-editor.org/rfc/rfc9110.html#section-7.6.1)).
    var connectionTokens: [Substring] {
        headers["connection"].flatMap { $0.lowercased().split(separator: ",").map { $0.trimmingSpaces } }
    }

    /// Whether llhttp treats this request as a protocol switch (an `Upgrade` field named in `Connection`, or CONNECT):
    /// NIO's decoder then parses nothing after the request (it waits to be removed), so a connection that does not
    /// switch must close after answering it.
    var stopsTheDecoder: Bool {
        method == .CONNECT || (headers.contains(name: "upgrade") && connectionTokens.contains("upgrade"))
    }

    /// Whether the request has a body (a `Content-Length` above 0, or `Transfer-Encoding`; RFC 9112 §6.3).
    var hasBody: Bool {
        if headers.contains(name: "transfer-encoding") { return true }
        return headers["content-length"].contains { ($0.trimmingSpaces.isEmpty ? 0 : Int($0.trimmingSpaces) ?? 1) > 0 }
    }

    /// The request as the handler sees it: the method, `scheme`, the `Host` field as the authority, the target as the
    /// path, and the fields without the connection's own.
    ///
    /// - Throws: ``HTTP2Error/invalidArgument(_:)`` for a method or field name HTTPTypes rejects, or an HTTP/1.1
    ///   request without `Host` (RFC 9112 §3.2).
    func httpRequest(scheme: String) throws -> HTTPRequest {
        guard let method = HTTPRequest.Method(method.rawValue) else {
            throw HTTP2Error.invalidArgument("invalid method \(method.rawValue)")
        }
        let hosts = headers["host"]
        guard hosts.count <= 1, version.minor == 0 || hosts.count == 1 else {
            throw HTTP2Error.invalidArgument("an HTTP/1.1 request needs exactly one Host field (RFC 9112 §3.2)")
        }
        var fields = HTTPFields()
        fields.reserveCapacity(headers.count)
        for (name, value) in headers where !isHopByHop(name) {
            if name.lowercased() == "te", value.lowercased() != "trailers" { continue }
            guard let fieldName = HTTPField.Name(name) else { throw HTTP2Error.invalidArgument("invalid field name \(name)") }
            fields.append(HTTPField(name: fieldName, value: value))
        }
        var request = HTTPRequest(method: method, scheme: scheme, authority: hosts.first, path: uri, headerFields: fields)
        if method == .connect {
            request.scheme = nil
            request.path = nil
            request.authority = uri
        }
        return request
    }
}

extension HTTPResponse {
    /// The head to write over HTTP/1.1 (`version` is the request's): the status, and the fields without those that
    /// only HTTP/2 knows.
    func http1Head(version: HTTPVersion) -> HTTPResponseHead {
        var headers = HTTPHeaders()
        headers.reserveCapacity(headerFields.count + 2)
        for field in headerFields { headers.add(name: field.name.rawName, value: field.value) }
        return HTTPResponseHead(
            version: version,
            status: HTTPResponseStatus(statusCode: status.code, reasonPhrase: status.reasonPhrase),
            headers: headers
        )
    }
}

extension HTTPRequest {
    /// The head a client writes over HTTP/1.1 (RFC 9112 §3): the target is the path (the authority for CONNECT),
    /// `Host` comes first from the authority (RFC 9112 §3.2), and the body is framed by `content-length` when its length
    /// is known (`bodyLength`) or the request carries one, otherwise by chunked coding (`Transfer-Encoding`, added by
    /// NIO's encoder). A request without a body to a method that defines one (POST, PUT, PATCH) says `content-length: 0`.
    func http1Head(bodyLength: Int?) -> HTTPRequestHead {
        var headers = HTTPHeaders()
        headers.reserveCapacity(headerFields.count + 2)
        if let authority { headers.add(name: "host", value: authority) }
        for field in headerFields where field.name != .contentLength || bodyLength == nil {
            headers.add(name: field.name.rawName, value: field.value)
        }
        if let bodyLength, bodyLength > 0 || method == .post || method == .put || method == .patch {
            headers.add(name: "content-length", value: String(bodyLength))
        }
        let target = method == .connect ? (authority ?? "") : (path ?? "/")
        return HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method.rawValue), uri: target, headers: headers)
    }
}

extension HTTPHeaders {
    /// A received response head's fields as a field block, without those that only concern the connection
    /// ([RFC 9110 §7.6.1](https://www.rfc-editor.org/rfc/rfc9110.html#section-7.6.1)): the application sees the same
    /// fields over HTTP/1.1 as over HTTP/2.
    var responseFieldBlock: [HeaderField] {
        var fields: [HeaderField] = []
        fields.reserveCapacity(count)
        for (name, value) in self where !isHopByHop(name) { fields.append(HeaderField(name.lowercased(), value)) }
        return fields
    }
}

extension HTTPFields {
    /// These fields as NIO's headers (trailers of a chunked body).
    var http1Headers: HTTPHeaders {
        var headers = HTTPHeaders()
        for field in self { headers.add(name: field.name.rawName, value: field.value) }
        return headers
    }
}

extension HTTPHeaders {
    /// Received trailers as HTTPTypes fields (names HTTPTypes rejects are dropped).
    var httpFields: HTTPFields {
        var fields = HTTPFields()
        for (name, value) in self {
            guard let fieldName = HTTPField.Name(name) else { continue }
            fields.append(HTTPField(name: fieldName, value: value))
        }
        return fields
    }
}

extension StringProtocol {
    /// Without leading and trailing spaces and tabs (optional whitespace, RFC 9110 §5.6.3).
    var trimmingSpaces: Substring {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let start = firstIndex(where: { !isSpace($0) }) else { return "" }
        let end = lastIndex(where: { !isSpace($0) })!
        return Substring(self[start...end])
    }
}

extension ByteBuffer {
    /// The first line (at most 200 bytes of it) when a server's first bytes are an HTTP/1.x answer rather than the
    /// SETTINGS frame an HTTP/2 server must send first (RFC 9113 §3.4): a status line (`HTTP/1.`, RFC 9112 §4), or
    /// text where the frame header should be (an HTTP/0.9-style error page, as Python's http.server sends for a
    /// request line with `HTTP/2.0`). A SETTINGS frame header starts with a zero byte, so it is never taken for text.
    var http1StatusLine: String? {
        let prefix = Array("HTTP/1.".utf8)
        let isStatusLine = readableBytes >= prefix.count && readableBytesView.prefix(prefix.count).elementsEqual(prefix)
        let isText = readableBytes >= 4 && readableBytesView.prefix(9).allSatisfy { byte in
            byte == 0x09 || byte == 0x0a || byte == 0x0d || (0x20...0x7e).contains(byte)
        }
        guard isStatusLine || isText else { return nil }
        let line = readableBytesView.prefix(200).prefix { $0 != UInt8(ascii: "\r") && $0 != UInt8(ascii: "\n") }
        return String(decoding: line, as: UTF8.self)
    }
}
