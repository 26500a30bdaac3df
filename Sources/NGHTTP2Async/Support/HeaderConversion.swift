public import HTTPTypes
public import NGHTTP2

/// Whether a HTTP/2 message must not carry this field ([RFC 9113 §8.2.2](https://www.rfc-editor.org/rfc/rfc9113.html#section-8.2.2)).
/// A switch, not a set: no hashing per field sent.
private func isConnectionSpecific(_ name: String) -> Bool {
    switch name {
    case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade": true
    default: false
    }
}

extension String {
    /// Whether this is a pseudo-header field name (`:path`, …); cheaper than `hasPrefix(":")`.
    var isPseudoFieldName: Bool { utf8.first == UInt8(ascii: ":") }
}

extension HTTPFields {
    /// Appends these fields as HTTP/2 header fields: names lower-cased, connection-specific fields dropped,
    /// `.disallow` indexing kept as never-indexed.
    func appendHTTP2Fields(to fields: inout [HeaderField]) {
        fields.reserveCapacity(fields.count + count)
        for field in self {
            let name = field.name.canonicalName
            if isConnectionSpecific(name) { continue }
            if name == "te", field.value.lowercased() != "trailers" { continue }
            fields.append(HeaderField(name, field.value, flags: field.indexingStrategy == .disallow ? .noIndex : []))
        }
    }

    /// Collects received regular fields (pseudo-header fields are skipped).
    init(http2Fields fields: [HeaderField]) {
        self.init()
        self.reserveCapacity(fields.count)
        for field in fields where !field.name.isPseudoFieldName {
            if let httpField = HTTPField(http2Field: field) { self.append(httpField) }
        }
    }
}

extension HTTPField {
    /// A received regular field; `nil` when swift-http-types cannot hold its name.
    init?(http2Field field: HeaderField) {
        guard let name = HTTPField.Name(parsed: field.name) ?? HTTPField.Name(field.name) else { return nil }
        self.init(name: name, value: field.value)
        if field.flags.contains(.noIndex) { indexingStrategy = .disallow }
    }
}

extension HTTPRequest {
    var http2Fields: [HeaderField] {
        var fields: [HeaderField] = []
        fields.reserveCapacity(5 + headerFields.count)
        fields.append(HeaderField(":method", method.rawValue))
        if let scheme { fields.append(HeaderField(":scheme", scheme)) }
        if let authority { fields.append(HeaderField(":authority", authority)) }
        if let path { fields.append(HeaderField(":path", path)) }
        if let protocolName = extendedConnectProtocol { fields.append(HeaderField(":protocol", protocolName)) }
        headerFields.appendHTTP2Fields(to: &fields)
        return fields
    }

    init(http2Fields fields: [HeaderField]) throws {
        var converter = ReceivedFieldsConverter()
        try self.init(http2Fields: fields, converter: &converter)
    }

    /// The request of a received field block, its regular fields converted by a connection's `converter`.
    init(http2Fields fields: [HeaderField], converter: inout ReceivedFieldsConverter) throws {
        var method: String?
        var scheme: String?
        var authority: String?
        var path: String?
        var protocolName: String?
        for field in fields where field.name.isPseudoFieldName {
            switch field.name {
            case ":method": method = field.value
            case ":scheme": scheme = field.value
            case ":authority": authority = field.value
            case ":path": path = field.value
            case ":protocol": protocolName = field.value
            default: throw HTTP2Error.malformedMessage("unknown pseudo-header field \(field.name)")
            }
        }
        guard let method else { throw HTTP2Error.malformedMessage("request without a valid :method") }
        let pseudo = ReceivedFieldsConverter.RequestPseudoFields(
            method: method, scheme: scheme, authority: authority, path: path, protocolName: protocolName
        )
        if var repeated = converter.request(pseudo) {
            repeated.headerFields = converter.httpFields(fields)
            self = repeated
            return
        }
        guard let parsedMethod = HTTPRequest.Method(method) else { throw HTTP2Error.malformedMessage("request without a valid :method") }
        self.init(method: parsedMethod, scheme: scheme, authority: authority, path: path, headerFields: converter.httpFields(fields))
        if let protocolName { self.extendedConnectProtocol = protocolName }
        converter.made(self, from: pseudo)
    }
}

extension HTTPResponse {
    var http2Fields: [HeaderField] {
        var fields: [HeaderField] = []
        fields.reserveCapacity(1 + headerFields.count)
        fields.append(HeaderField(":status", String(status.code)))
        headerFields.appendHTTP2Fields(to: &fields)
        return fields
    }

    /// Lays the response's HTTP/2 field block out in a temporary allocation (on the stack when small) for the
    /// length of `body`: what ``http2Fields`` gives, without an array to allocate per response.
    func withHTTP2Fields<R>(_ body: (UnsafeBufferPointer<HeaderField>) throws -> R) rethrows -> R {
        let headerFields = self.headerFields
        return try withUnsafeTemporaryAllocation(of: HeaderField.self, capacity: 1 + headerFields.count) { buffer in
            let code = status.code
            buffer.initializeElement(at: 0, to: HeaderField(":status", code == 200 ? "200" : String(code)))
            var count = 1
            for field in headerFields {
                let name = field.name.canonicalName
                if isConnectionSpecific(name) { continue }
                if name == "te", field.value.lowercased() != "trailers" { continue }
                buffer.initializeElement(
                    at: count,
                    to: HeaderField(name, field.value, flags: field.indexingStrategy == .disallow ? .noIndex : [])
                )
                count += 1
            }
            defer { buffer.baseAddress!.deinitialize(count: count) }
            return try body(UnsafeBufferPointer(start: buffer.baseAddress, count: count))
        }
    }

    /// The `:status` of a received field block.
    static func status(http2Fields fields: [HeaderField]) throws -> Status {
        guard let status = fields.first(where: { $0.name == ":status" }), let code = Int(status.value), (100...999).contains(code) else {
            throw HTTP2Error.malformedMessage("response without a valid :status")
        }
        return Status(code: code)
    }
}

extension ErrorCode {
    /// The same code as swift-http-types spells it.
    public var httpTypesCode: HTTP2ErrorCode { HTTP2ErrorCode(rawValue: rawValue) }
}
