#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Turns header names and values that libnghttp2 hands out into Strings, reusing the String made last time for
/// the same bytes at the same address (an entry of the HPACK dynamic table is handed out from one place for as
/// long as it lives). Short strings are never cached: Swift stores up to 15 UTF-8 bytes without allocating.
struct FieldStringCache {
    private var entries: [UnsafeRawPointer: String] = [:]
    private static let capacity = 128

    mutating func string(_ bytes: UnsafePointer<UInt8>?, count: Int) -> String {
        guard let bytes, count > 15 else { return String(bytes: bytes, count: count) }
        let key = UnsafeRawPointer(bytes)
        if var cached = entries[key], cached.utf8.count == count,
            cached.withUTF8({ memcmp($0.baseAddress!, bytes, count) == 0 })
        {
            return cached
        }
        let string = String(bytes: bytes, count: count)
        if entries.count >= Self.capacity { entries.removeAll(keepingCapacity: true) }
        entries[key] = string
        return string
    }
}
