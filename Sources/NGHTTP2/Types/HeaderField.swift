/// One header field: a name, a value and how HPACK may index it.
///
/// Names of fields that this library sends are lower-cased on the way out (HTTP/2 requires it,
/// [RFC 9113 §8.2.1](https://www.rfc-editor.org/rfc/rfc9113.html#section-8.2.1)); pseudo-header fields
/// (`:method`, `:path`, `:status`, …) are ordinary fields whose names start with a colon.
public struct HeaderField: Hashable, Sendable {
    /// The field name.
    public var name: String
    /// The field value.
    public var value: String
    /// How the field may be compressed.
    public var flags: Flags

    /// Creates a header field.
    public init(_ name: String, _ value: String, flags: Flags = []) {
        self.name = name
        self.value = value
        self.flags = flags
    }

    /// How a header field may be compressed (`nghttp2_nv_flag`).
    public struct Flags: OptionSet, Hashable, Sendable {
        /// The flag bits.
        public let rawValue: UInt8
        /// Creates flags from their bits.
        public init(rawValue: UInt8) { self.rawValue = rawValue }

        /// Never index this field: HPACK sends it as "literal never indexed"
        /// ([RFC 7541 §6.2.3](https://www.rfc-editor.org/rfc/rfc7541.html#section-6.2.3)), and so must
        /// every intermediary. Use it for secrets such as `authorization` and `cookie` values.
        public static let noIndex = Flags(rawValue: 0x1)
    }
}

extension HeaderField: CustomStringConvertible {
    /// A readable form, for logs and error messages.
    public var description: String { "\(name): \(value)" + (flags.contains(.noIndex) ? " (never indexed)" : "") }
}

extension HeaderField: ExpressibleByArrayLiteral {
    /// Creates a field from `["name", "value"]`.
    public init(arrayLiteral elements: String...) {
        precondition(elements.count == 2, "a header field literal is [name, value]")
        self.init(elements[0], elements[1])
    }
}

extension Array where Element == HeaderField {
    /// The value of the first field with this name (compared case-insensitively), if any.
    public subscript(name name: String) -> String? {
        let lowered = name.lowercased()
        return first { $0.name == lowered || $0.name.lowercased() == lowered }?.value
    }
}
