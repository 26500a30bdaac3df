import Foundation

/// Writes the JSON `h2 serve` answers with, in the format `JSONSerialization` gives with `.prettyPrinted`,
/// `.sortedKeys` and `.withoutEscapingSlashes` (two-space indentation, `"key" : value`), without going through
/// Foundation's object bridging: strings, numbers, booleans, nulls, arrays and dictionaries of them. Any other value
/// (what `JSONSerialization.jsonObject` returned for a request body) is written by `JSONSerialization`.
enum JSONText {
    static func data(_ value: Any) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(512)
        write(value, indent: 0, into: &out)
        return out
    }

    private static func write(_ value: Any, indent: Int, into out: inout [UInt8]) {
        // The types `h2 serve` builds, by exact type first: a conditional cast of a `[String: Any]` to
        // `[String: String]` would try every value (a third of `/get`'s time went to such casts).
        let type = type(of: value)
        if type == String.self {
            return writeString(value as! String, into: &out)
        }
        if type == [String: String].self {
            return writeObject((value as! [String: String]).mapValues { $0 as Any }, indent: indent, into: &out)
        }
        if type == [String: Any].self {
            return writeObject(value as! [String: Any], indent: indent, into: &out)
        }
        switch value {
        case let string as String:
            writeString(string, into: &out)
        case let object as [String: String]:
            writeObject(object.mapValues { $0 as Any }, indent: indent, into: &out)
        case let object as [String: Any]:
            writeObject(object, indent: indent, into: &out)
        case let array as [Any]:
            writeArray(array, indent: indent, into: &out)
        case let bool as Bool where !(value is NSNumber):
            out.append(contentsOf: Array((bool ? "true" : "false").utf8))
        case let integer as Int where !(value is NSNumber):
            out.append(contentsOf: Array(String(integer).utf8))
        case is NSNull:
            out.append(contentsOf: Array("null".utf8))
        default:
            // NSNumber and Foundation containers from a parsed body: JSONSerialization knows their exact form.
            let options: JSONSerialization.WritingOptions = [.fragmentsAllowed, .sortedKeys, .withoutEscapingSlashes]
            if let data = try? JSONSerialization.data(withJSONObject: value, options: options) {
                out.append(contentsOf: data)
            } else {
                out.append(contentsOf: Array("null".utf8))
            }
        }
    }

    /// Whether key `a` sorts before `b` as `.sortedKeys` sorts them: `NSNumericSearch` in the system locale. Keys of
    /// lowercase letters and `-` only (header names, most query names) sort by their bytes there, so they skip
    /// Foundation's comparison.
    static func precedes(_ a: String, _ b: String) -> Bool {
        if isPlain(a), isPlain(b) { return a < b }
        return a.compare(b, options: [.numeric, .caseInsensitive, .forcedOrdering], range: a.startIndex..<a.endIndex, locale: NSLocale.system)
            == .orderedAscending
    }

    private static func isPlain(_ key: String) -> Bool {
        key.utf8.allSatisfy { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || $0 == UInt8(ascii: "-") }
    }

    private static func newline(_ indent: Int, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\n"))
        out.append(contentsOf: repeatElement(UInt8(ascii: " "), count: indent * 2))
    }

    /// An object, its members in `.sortedKeys` order.
    private static func writeObject(_ object: [String: Any], indent: Int, into out: inout [UInt8]) {
        let members = object.sorted { precedes($0.key, $1.key) }
        writeContainer("{", "}", members, indent: indent, into: &out) { member, out in
            writeString(member.key, into: &out)
            out.append(contentsOf: " : ".utf8)
            write(member.value, indent: indent + 1, into: &out)
        }
    }

    private static func writeArray(_ elements: [Any], indent: Int, into out: inout [UInt8]) {
        writeContainer("[", "]", elements, indent: indent, into: &out) { element, out in
            write(element, indent: indent + 1, into: &out)
        }
    }

    /// An object or array: each element on a line of its own, one level deeper; an empty one as `{\n\n}` with the
    /// closing bracket indented, as `JSONSerialization` writes it.
    private static func writeContainer<Element>(
        _ open: Unicode.Scalar,
        _ close: Unicode.Scalar,
        _ elements: [Element],
        indent: Int,
        into out: inout [UInt8],
        _ writeElement: (Element, inout [UInt8]) -> Void
    ) {
        out.append(UInt8(ascii: open))
        if elements.isEmpty { out.append(UInt8(ascii: "\n")) }
        for (index, element) in elements.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            newline(indent + 1, into: &out)
            writeElement(element, &out)
        }
        newline(indent, into: &out)
        out.append(UInt8(ascii: close))
    }

    /// A JSON string (RFC 8259 §7): quotes, backslashes and control characters escaped; `/` and non-ASCII as is.
    private static func writeString(_ string: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        defer { out.append(UInt8(ascii: "\"")) }
        if !string.utf8.contains(where: { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }) {
            return out.append(contentsOf: string.utf8)  // nothing to escape: one copy
        }
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x0A: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: Array("\\u00".utf8))
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0xf)])
            default: out.append(byte)
            }
        }
    }
}
