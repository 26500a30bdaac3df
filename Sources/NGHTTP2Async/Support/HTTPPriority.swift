/// The priority of a response, as the Extensible Prioritization Scheme for HTTP defines it
/// ([RFC 9218](https://www.rfc-editor.org/rfc/rfc9218.html)): an urgency from 0 (most urgent) to 7, and whether the
/// response can be used incrementally, as its bytes arrive.
///
/// A client sends it in the `priority` header field of its request (``HTTPTypes/HTTPRequest/priority``, RFC 9218 §5)
/// and may change it later with a PRIORITY_UPDATE frame (``ClientSession/Response/updatePriority(_:)``, RFC 9218
/// §7.1). A ``ServerSession`` sends the responses of one connection in priority order: libnghttp2 reads the field and
/// the frames itself, because the server sends SETTINGS_NO_RFC7540_PRIORITIES = 1 (RFC 9218 §2.1). Its handlers
/// see what the client asked for in ``ServerSession/Request/priority``.
///
/// ```swift
/// var request = HTTPRequest(method: .get, scheme: "https", authority: "example.org", path: "/app.css")
/// request.priority = HTTPPriority(urgency: 1)              // priority: u=1
/// let image = HTTPPriority(urgency: 5, incremental: true)  // priority: u=5, i
/// ```
public struct HTTPPriority: Sendable, Hashable, CustomStringConvertible {
    /// The urgency, from 0 (most urgent) to 7 (least urgent); 3 when the client says nothing
    /// ([RFC 9218 §4.1](https://www.rfc-editor.org/rfc/rfc9218.html#section-4.1)).
    public var urgency: Int {
        didSet { urgency = Self.clamp(urgency) }
    }

    /// Whether the client can use the response's bytes as they arrive, so that responses of the same urgency may
    /// share the connection instead of being sent one after another; `false` when the client says nothing
    /// ([RFC 9218 §4.2](https://www.rfc-editor.org/rfc/rfc9218.html#section-4.2)).
    public var incremental: Bool

    /// The most urgent level, 0 ([RFC 9218 §4.1](https://www.rfc-editor.org/rfc/rfc9218.html#section-4.1)).
    public static let highestUrgency = 0
    /// The least urgent level, 7, which [RFC 9218 §4.1](https://www.rfc-editor.org/rfc/rfc9218.html#section-4.1)
    /// suggests for background work such as software updates.
    public static let lowestUrgency = 7
    /// The urgency of a request that names none, 3 ([RFC 9218 §4.1](https://www.rfc-editor.org/rfc/rfc9218.html#section-4.1)).
    public static let defaultUrgency = 3

    /// The priority of a request without a `priority` field: urgency 3, not incremental
    /// ([RFC 9218 §4](https://www.rfc-editor.org/rfc/rfc9218.html#section-4)).
    public static let `default` = HTTPPriority()

    /// A priority with this urgency (clamped to 0…7) and incremental flag
    /// ([RFC 9218 §4](https://www.rfc-editor.org/rfc/rfc9218.html#section-4)).
    public init(urgency: Int = HTTPPriority.defaultUrgency, incremental: Bool = false) {
        self.urgency = Self.clamp(urgency)
        self.incremental = incremental
    }

    /// Parses a Priority field value, a Structured Field Dictionary
    /// ([RFC 9218 §5](https://www.rfc-editor.org/rfc/rfc9218.html#section-5),
    /// [RFC 8941 §3.2](https://www.rfc-editor.org/rfc/rfc8941.html#section-3.2)) such as `u=1, i`.
    ///
    /// Members other than `u` and `i` are ignored, and so is a `u` that is not an integer from 0 to 7 or an `i` that
    /// is not a Boolean: their defaults apply (RFC 9218 §4). When a member appears twice, the last one counts.
    ///
    /// - Returns: `nil` when `fieldValue` is not a Structured Field Dictionary at all; RFC 8941 §4.2 then says to
    ///   ignore the whole field, which means ``default``.
    public init?(fieldValue: String) {
        var priority = HTTPPriority()
        var parser = DictionaryParser(Array(fieldValue.utf8))
        guard
            parser.parse({ key, value in
                switch (key, value) {
                case ("u", .integer(let urgency)) where (0...7).contains(urgency): priority.urgency = urgency
                case ("i", .boolean(let incremental)): priority.incremental = incremental
                default: break
                }
            })
        else { return nil }
        self = priority
    }

    /// The Priority field value that says this priority, for example `u=5, i`
    /// ([RFC 9218 §5](https://www.rfc-editor.org/rfc/rfc9218.html#section-5)). The urgency is always written (also
    /// the default `u=3`), so that the field is never empty; `i` only when incremental.
    public var fieldValue: String {
        incremental ? "u=\(urgency), i" : "u=\(urgency)"
    }

    /// The field value ([RFC 9218 §5](https://www.rfc-editor.org/rfc/rfc9218.html#section-5)), for logs.
    public var description: String { fieldValue }

    private static func clamp(_ urgency: Int) -> Int {
        min(max(urgency, highestUrgency), lowestUrgency)
    }
}

/// Reads a Structured Field Dictionary (RFC 8941 §4.2.2), handing each member's key and the part of its value that
/// the Priority field uses to a closure. Strings, tokens, byte sequences, decimals, inner lists and parameters are
/// checked only as far as needed to find where a member ends.
private struct DictionaryParser {
    enum Value {
        case integer(Int)
        case boolean(Bool)
        case other
    }

    private let bytes: [UInt8]
    private var index = 0

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    private var current: UInt8? { index < bytes.count ? bytes[index] : nil }

    /// Parses the whole field; `false` when it is not a dictionary.
    mutating func parse(_ member: (String, Value) -> Void) -> Bool {
        skip(while: { $0 == UInt8(ascii: " ") })
        if current == nil { return true }  // an empty field is an empty dictionary
        while true {
            guard let key = parseKey() else { return false }
            let value: Value
            if current == UInt8(ascii: "=") {
                index += 1
                guard let item = parseItemOrInnerList() else { return false }
                value = item
            } else {
                value = .boolean(true)  // a bare key is the Boolean true (RFC 8941 §3.2)
            }
            guard skipParameters() else { return false }
            member(key, value)
            skip(while: { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") })
            guard let next = current else { return true }
            guard next == UInt8(ascii: ",") else { return false }
            index += 1
            skip(while: { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") })
            if current == nil { return false }  // a trailing comma
        }
    }

    private mutating func skip(while predicate: (UInt8) -> Bool) {
        while let byte = current, predicate(byte) { index += 1 }
    }

    /// key = ( lcalpha / "*" ) *( lcalpha / DIGIT / "_" / "-" / "." / "*" )
    private mutating func parseKey() -> String? {
        guard let first = current, isLowercaseLetter(first) || first == UInt8(ascii: "*") else { return nil }
        let start = index
        skip(while: { isLowercaseLetter($0) || isDigit($0) || "_-.*".utf8.contains($0) })
        return String(decoding: bytes[start..<index], as: UTF8.self)
    }

    private mutating func parseItemOrInnerList() -> Value? {
        guard current == UInt8(ascii: "(") else { return parseBareItem() }
        index += 1
        while true {
            skip(while: { $0 == UInt8(ascii: " ") })
            if current == UInt8(ascii: ")") {
                index += 1
                return .other
            }
            guard parseBareItem() != nil, skipParameters() else { return nil }
            guard let next = current, next == UInt8(ascii: " ") || next == UInt8(ascii: ")") else { return nil }
        }
    }

    private mutating func parseBareItem() -> Value? {
        guard let first = current else { return nil }
        switch first {
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return parseNumber()
        case UInt8(ascii: "?"):
            index += 1
            defer { index += 1 }
            switch current {
            case UInt8(ascii: "1"): return .boolean(true)
            case UInt8(ascii: "0"): return .boolean(false)
            default: return nil
            }
        case UInt8(ascii: "\""):
            index += 1
            while let byte = current {
                index += 1
                if byte == UInt8(ascii: "\\") {
                    guard let escaped = current, escaped == UInt8(ascii: "\"") || escaped == UInt8(ascii: "\\") else { return nil }
                    index += 1
                } else if byte == UInt8(ascii: "\"") {
                    return .other
                } else if byte < 0x20 || byte > 0x7e {
                    return nil
                }
            }
            return nil
        case UInt8(ascii: ":"):
            index += 1
            skip(while: { isLetter($0) || isDigit($0) || "+/=".utf8.contains($0) })
            guard current == UInt8(ascii: ":") else { return nil }
            index += 1
            return .other
        default:
            guard isLetter(first) || first == UInt8(ascii: "*") else { return nil }
            // tchar / ":" / "/" (RFC 8941 §3.3.4)
            skip(while: { isLetter($0) || isDigit($0) || "!#$%&'*+-.^_`|~:/".utf8.contains($0) })
            return .other
        }
    }

    /// An Integer (up to 15 digits) or a Decimal (RFC 8941 §3.3.1, §3.3.2).
    private mutating func parseNumber() -> Value? {
        var negative = false
        if current == UInt8(ascii: "-") {
            negative = true
            index += 1
        }
        let start = index
        skip(while: isDigit)
        let integerDigits = index - start
        guard integerDigits > 0 else { return nil }
        if current == UInt8(ascii: ".") {
            index += 1
            let fractionStart = index
            skip(while: isDigit)
            let fractionDigits = index - fractionStart
            guard integerDigits <= 12, (1...3).contains(fractionDigits) else { return nil }
            return .other
        }
        guard integerDigits <= 15, let value = Int(String(decoding: bytes[start..<index], as: UTF8.self)) else { return nil }
        return .integer(negative ? -value : value)
    }

    /// parameters = *( ";" *SP key [ "=" bare-item ] )
    private mutating func skipParameters() -> Bool {
        while current == UInt8(ascii: ";") {
            index += 1
            skip(while: { $0 == UInt8(ascii: " ") })
            guard parseKey() != nil else { return false }
            if current == UInt8(ascii: "=") {
                index += 1
                guard parseBareItem() != nil else { return false }
            }
        }
        return true
    }
}

private func isLowercaseLetter(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z") }
private func isLetter(_ byte: UInt8) -> Bool { isLowercaseLetter(byte) || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z")) }
private func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }
